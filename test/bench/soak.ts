/**
 * `npm run bench:soak`: Mailyard's memory over a long relay run. One daemon (the bench config,
 * fsync on) relays --rounds rounds of --messages messages (2 KB unless --size) each, with connection reuse,
 * through the shared harness (smtp-source -> Mailyard -> smtp-sink). After every round it prints
 * the round's rate and the daemon's PSS once the queue is empty.
 *
 * A daemon that lets go of every delivered message levels off after the first rounds; PSS that
 * keeps climbing round after round is memory kept per message (a stale timer-heap entry per
 * message once cost about 350 bytes each: 21 MB after 60,000 messages). Never asserts; it reports.
 *
 * Options: --rounds N (default 6), --messages N per round (default 25000), --no-fsync,
 * --one-per-connection (a new SMTP session for every message, to show memory kept per session),
 * --size BYTES (default 2048).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchConfig, findBenchDir, runCaseArgv, sh, startMailyard, stopSystem } from './common.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  const n = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} needs a positive whole number`);
  return n;
};
const rounds = opt('--rounds', 6);
const size = opt('--size', 2048);
const onePerConnection = args.includes('--one-per-connection');
const perRound = opt('--messages', 25000);
const benchDir = findBenchDir();
if (sh(join(benchDir, 'relay-bench'), ['setup']) !== 0) process.exit(1);

/** Proportional set size of a process in MB (its share of shared pages counted). */
function pssMb(pid: number): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const work = mkdtempSync(join(tmpdir(), 'mailyard-soak-'));
const child = await startMailyard(benchConfig(work, { fsync: !args.includes('--no-fsync') }));
const rows: { round: number; total: number; rate: string; pss: number }[] = [];
try {
  for (let round = 1; round <= rounds; round++) {
    const workload = ['--messages', String(perRound), '--sessions', '20', '--size', String(size), ...(onePerConnection ? [] : ['--per-conn'])];
    const r = spawnSync(process.execPath, runCaseArgv(benchDir, { workload, label: 'mailyard', workloadName: 'soak', pid: child.pid! }), { encoding: 'utf8' });
    const summary = r.stdout.trim().split('\n').pop() ?? '';
    if (!/status=ok/.test(summary)) {
      console.error(`[soak] round ${round} failed: ${summary || r.stderr.trim()}`);
      process.exitCode = 1;
      break;
    }
    // Deliveries finish with the last arrival at the sink; give the queue a moment to forget them.
    await new Promise((res) => setTimeout(res, 1500));
    const row = { round, total: round * perRound, rate: /rate=([\d.]+)/.exec(summary)?.[1] ?? '?', pss: pssMb(child.pid!) };
    rows.push(row);
    console.log(`[soak] round ${round}: ${row.total} messages relayed, ${row.rate} msgs/s, PSS ${row.pss.toFixed(1)} MB`);
  }
} finally {
  await stopSystem(child);
}
if (rows.length >= 3) {
  const a = rows[1]!;
  const b = rows[rows.length - 1]!;
  const perHundredK = ((b.pss - a.pss) / (b.total - a.total)) * 100_000;
  console.log(`[soak] PSS from round 2 to round ${b.round}: ${(b.pss - a.pss).toFixed(1)} MB over ${b.total - a.total} messages (${perHundredK.toFixed(1)} MB per 100,000)`);
}
console.log(`[soak] work dir ${work}`);
