/**
 * What the benchmarks share: where the shared relay harness lives, the ports, the bench config
 * (anonymous relay for 127.0.0.1 to the harness's sink) and starting and stopping Mailyard.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForPort } from '../helpers/daemon.js';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MTA_PORT = 39125;
export const SINK_PORT = 39124;

/** The folder holding relay-bench (../shared/bench), or exits with a message. */
export function findBenchDir(): string {
  const dir = [process.env.RELAY_BENCH_DIR, join(root, '..', 'shared', 'bench'), join(root, 'shared', 'bench')].find(
    (d): d is string => Boolean(d && existsSync(join(d, 'relay-bench'))),
  );
  if (!dir) {
    console.error('relay bench harness not found: set RELAY_BENCH_DIR to the folder holding relay-bench (shared/bench)');
    process.exit(2);
  }
  return dir;
}

export function sh(cmd: string, argv: string[]): number {
  const r = spawnSync(cmd, argv, { stdio: 'inherit' });
  return r.status ?? 1;
}

/**
 * The harness's run-case.js command line for one run against the MTA on MTA_PORT: `workload` holds
 * the workload options (--messages N first), `extra` anything more (--json, --rep). The time limit
 * grows with the message count; memory and CPU are sampled from `pid`.
 */
export function runCaseArgv(benchDir: string, o: { workload: string[]; label: string; workloadName: string; pid: number; extra?: string[] }): string[] {
  const n = Number(o.workload[o.workload.indexOf('--messages') + 1]);
  return [
    join(benchDir, 'lib', 'run-case.js'),
    '--target', `127.0.0.1:${MTA_PORT}`, '--sink-port', String(SINK_PORT), ...o.workload,
    '--label', o.label, '--workload', o.workloadName, ...(o.extra ?? []),
    '--timeout', String(60 + Math.ceil(n / 40)), '--pids', String(o.pid),
  ];
}

export function benchConfig(dir: string, opts: { fsync: boolean }): string {
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
    bindings: ["127.0.0.1:${MTA_PORT}"]
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
    smartHosts: ["127.0.0.1:${SINK_PORT}"]
    smtpMaxMessagesPerConnection: 1000
transportService:
  maxPerDomainOutboundConnections: 20
  fsyncEnabled: ${opts.fsync ? 'true' : 'false'}
`,
  );
  return file;
}

export async function startMailyard(config: string): Promise<ChildProcess> {
  // The V8 setting of the shipped systemd unit and image (config/mailyard.service).
  const child = spawn(process.execPath, ['--max-semi-space-size=4', '--heap-growing-percent=100', join(root, 'bin', 'mailyard.js'), 'start', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(MTA_PORT, 15000);
  return child;
}

/** SIGTERM, then SIGKILL after 20 s: Mailyard or the floor. */
export async function stopSystem(child: ChildProcess): Promise<void> {
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

