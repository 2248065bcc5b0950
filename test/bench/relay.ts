/**
 * `npm run bench`: relay throughput of Mailyard beside Postfix, measured in one run with the shared
 * harness (../shared/bench/relay-bench: smtp-source -> MTA -> smtp-sink on loopback).
 *
 * For each repetition and workload, Postfix (started by `relay-bench anchors --systems postfix`)
 * and Mailyard (started here from a bench config, fsync on) run back to back, so their ratio
 * compares runs minutes apart. Prints the harness's report with ratios against Postfix.
 *
 * Options: --quick (1/10 of the messages), --runs N (default 1), --workloads 2k,2k-reuse,100k,
 * --no-postfix (Mailyard only), --no-fsync (for comparison only; never a production setting),
 * --floor (also runs floor.ts, the same relay path built from the required libraries alone, to
 * show how much of Mailyard's cost per message is its own).
 * Never asserts timings; it only reports.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForPort } from '../helpers/daemon.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};

const benchDir = [process.env.RELAY_BENCH_DIR, join(root, '..', 'shared', 'bench'), join(root, 'shared', 'bench')].find(
  (d): d is string => Boolean(d && existsSync(join(d, 'relay-bench'))),
);
if (!benchDir) {
  console.error('relay bench harness not found: set RELAY_BENCH_DIR to the folder holding relay-bench (shared/bench)');
  process.exit(2);
}
const relayBench = join(benchDir, 'relay-bench');
const scale = flag('--quick') ? 10 : 1;
const runs = Number(opt('--runs', '1'));
const workloads = opt('--workloads', '2k,2k-reuse,100k').split(',');
const withPostfix = !flag('--no-postfix');
const withFloor = flag('--floor');
const mtaPort = 39125;
const sinkPort = 39124;

const WORKLOADS: Record<string, string[]> = {
  '2k': ['--messages', String(20000 / scale), '--sessions', '20', '--size', '2048'],
  '100k': ['--messages', String(5000 / scale), '--sessions', '20', '--size', '102400'],
  '2k-reuse': ['--messages', String(20000 / scale), '--sessions', '20', '--size', '2048', '--per-conn'],
  '2k-s100': ['--messages', String(20000 / scale), '--sessions', '100', '--size', '2048'],
};

function sh(cmd: string, argv: string[]): number {
  const r = spawnSync(cmd, argv, { stdio: 'inherit' });
  return r.status ?? 1;
}

function benchConfig(dir: string): string {
  const file = join(dir, 'mailyard-bench.yaml');
  writeFileSync(
    file,
    `# Relay benchmark: anonymous relay for 127.0.0.1 to the harness's sink.
server:
  name: BENCH
  fqdn: bench.mailyard.test
  dataDir: ${join(dir, 'spool')}
  logDir: ${join(dir, 'log')}
  logLevel: warn
  admin: { listen: "127.0.0.1:0" }
receiveConnectors:
  - name: Bench relay
    bindings: ["127.0.0.1:${mtaPort}"]
    remoteIPRanges: ["127.0.0.1"]
    permissionGroups: [AnonymousUsers]
    permissions: [SMTPAcceptAnyRecipient]
    authMechanism: [None]
    maxInboundConnectionPerSource: unlimited
    maxInboundConnectionPercentagePerSource: 100
    tarpitInterval: 0s
sendConnectors:
  - name: Bench sink
    addressSpaces: ["SMTP:dest.relay-bench.test;1"]
    smartHosts: ["127.0.0.1:${sinkPort}"]
    smtpMaxMessagesPerConnection: 1000
transportService:
  maxPerDomainOutboundConnections: 20
  fsyncEnabled: ${flag('--no-fsync') ? 'false' : 'true'}
`,
  );
  return file;
}

async function startMailyard(config: string): Promise<ChildProcess> {
  // The V8 setting of the shipped systemd unit and image (config/mailyard.service).
  const child = spawn(process.execPath, ['--max-semi-space-size=4', '--heap-growing-percent=100', join(root, 'bin', 'mailyard.js'), 'start', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(mtaPort, 15000);
  return child;
}

async function startFloor(dir: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'test', 'bench', 'floor.ts'), '--listen', `127.0.0.1:${mtaPort}`, '--next-hop', `127.0.0.1:${sinkPort}`, '--file', join(dir, 'floor.journal')],
    { stdio: ['ignore', 'ignore', 'inherit'], cwd: root },
  );
  await waitForPort(mtaPort, 15000);
  return child;
}

/** SIGTERM, then SIGKILL after 20 s: Mailyard or the floor. */
async function stopSystem(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((res) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
    }, 20000);
    child.once('exit', () => {
      clearTimeout(t);
      res();
    });
    child.kill('SIGTERM');
  });
}

const work = mkdtempSync(join(tmpdir(), 'mailyard-bench-'));
const results = join(work, 'results.jsonl');
writeFileSync(results, '');
if (sh(relayBench, ['setup']) !== 0) process.exit(1);
console.log(`[bench] work dir ${work}; results ${results}`);

for (let rep = 1; rep <= runs; rep++) {
  for (const wl of workloads) {
    const common = WORKLOADS[wl];
    if (!common) throw new Error(`unknown workload ${wl}`);
    if (withPostfix) {
      sh(relayBench, ['anchors', '--systems', 'postfix', '--workloads', wl, '--runs', '1', '--results', results, ...(scale > 1 ? ['--quick'] : [])]);
      // anchors numbers its repetitions from 1; renumber the line it just wrote.
      const lines = readFileSync(results, 'utf8').trimEnd().split('\n');
      const last = JSON.parse(lines[lines.length - 1]!);
      last.rep = rep;
      lines[lines.length - 1] = JSON.stringify(last);
      writeFileSync(results, `${lines.join('\n')}\n`);
    }
    const systems: Array<[string, (dir: string) => Promise<ChildProcess>]> = [['mailyard', (dir) => startMailyard(benchConfig(dir))]];
    if (withFloor) systems.push(['floor', startFloor]);
    for (const [label, start] of systems) {
      const child = await start(mkdtempSync(join(work, `run-${label}-${wl}-`)));
      const n = Number(common[1]);
      sh(process.execPath, [
        join(benchDir, 'lib', 'run-case.js'),
        '--target', `127.0.0.1:${mtaPort}`, '--sink-port', String(sinkPort), ...common,
        '--label', label, '--workload', wl, '--rep', String(rep), '--json', results,
        '--timeout', String(60 + Math.ceil(n / 40)), '--pids', String(child.pid),
      ]);
      await stopSystem(child);
    }
  }
}
sh(process.execPath, [join(benchDir, 'lib', 'report.js'), results, ...(withPostfix ? ['--ref', 'postfix'] : []), '--markdown']);
console.log(`[bench] raw results: ${results}`);
