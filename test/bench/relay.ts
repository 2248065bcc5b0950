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
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForPort } from '../helpers/daemon.js';
import { MTA_PORT, SINK_PORT, benchConfig, findBenchDir, root, runCaseArgv, sh, startMailyard, stopSystem } from './common.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};

const benchDir = findBenchDir();
const relayBench = join(benchDir, 'relay-bench');
const scale = flag('--quick') ? 10 : 1;
const runs = Number(opt('--runs', '1'));
const workloads = opt('--workloads', '2k,2k-reuse,100k').split(',');
const withPostfix = !flag('--no-postfix');
const withFloor = flag('--floor');

const WORKLOADS: Record<string, string[]> = {
  '2k': ['--messages', String(20000 / scale), '--sessions', '20', '--size', '2048'],
  '100k': ['--messages', String(5000 / scale), '--sessions', '20', '--size', '102400'],
  '2k-reuse': ['--messages', String(20000 / scale), '--sessions', '20', '--size', '2048', '--per-conn'],
  '2k-s100': ['--messages', String(20000 / scale), '--sessions', '100', '--size', '2048'],
};

async function startFloor(dir: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'test', 'bench', 'floor.ts'), '--listen', `127.0.0.1:${MTA_PORT}`, '--next-hop', `127.0.0.1:${SINK_PORT}`, '--file', join(dir, 'floor.journal')],
    { stdio: ['ignore', 'ignore', 'inherit'], cwd: root },
  );
  await waitForPort(MTA_PORT, 15000);
  return child;
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
    const systems: Array<[string, (dir: string) => Promise<ChildProcess>]> = [['mailyard', (dir) => startMailyard(benchConfig(dir, { fsync: !flag('--no-fsync') }))]];
    if (withFloor) systems.push(['floor', startFloor]);
    for (const [label, start] of systems) {
      const child = await start(mkdtempSync(join(work, `run-${label}-${wl}-`)));
      sh(process.execPath, runCaseArgv(benchDir, { workload: common, label, workloadName: wl, pid: child.pid!, extra: ['--rep', String(rep), '--json', results] }));
      await stopSystem(child);
    }
  }
}
sh(process.execPath, [join(benchDir, 'lib', 'report.js'), results, ...(withPostfix ? ['--ref', 'postfix'] : []), '--markdown']);
console.log(`[bench] raw results: ${results}`);
