/**
 * Runs the real `mailyard` command as a child process for tests: the daemon with a config written
 * to a temp dir, its JSON log lines collected from stdout, and helpers to wait for a log line or a
 * port, send signals and wait for the exit code.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// The sources through tsx, never a possibly stale dist/ (bin/mailyard.js prefers dist/).
const entry = ['--import', 'tsx', join(repoRoot, 'src', 'main.ts')];

export { freePort, freePorts } from './peers.js';

export function tempDir(prefix = 'mailyard-test-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Runs a one-shot CLI command synchronously. */
export function runCli(argv: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [...entry, ...argv], {
    input: opts.input,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: 30000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface LogLine {
  level: string;
  msg: string;
  code?: string;
  [k: string]: unknown;
}

export class DaemonProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  stderr = '';
  private exit: Promise<number | null>;

  constructor(configFile: string, env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [...entry, 'start', '--config', configFile], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ level: 'raw', msg: line });
        }
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exit = new Promise((res) => this.child.once('exit', (code) => res(code)));
  }

  async waitForLog(pred: (l: LogLine) => boolean, ms = 15000): Promise<LogLine> {
    const until = Date.now() + ms;
    for (;;) {
      const hit = this.logs.find(pred);
      if (hit) return hit;
      if (this.child.exitCode !== null) throw new Error(`daemon exited (${this.child.exitCode}) before the expected log line; stderr: ${this.stderr}`);
      if (Date.now() > until) throw new Error(`no matching log line within ${ms} ms; got: ${this.logs.map((l) => l.msg).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  async exitCode(ms = 30000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), ms)));
    const r = await Promise.race([this.exit, t]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.child.kill('SIGKILL');
      throw new Error(`daemon did not exit within ${ms} ms`);
    }
    return r;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** Resolves once something accepts connections on 127.0.0.1:port. */
export async function waitForPort(port: number, ms = 10000, host = '127.0.0.1'): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, host, () => {
        s.destroy();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${host}:${port} after ${ms} ms`);
}

/** Reads the SMTP greeting line of a fresh connection. */
export async function greeting(port: number, host = '127.0.0.1'): Promise<string> {
  return await new Promise((res, rej) => {
    const s = connect(port, host);
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      rej(new Error('no greeting within 5 s'));
    }, 5000);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      data += d;
      if (data.includes('\r\n')) {
        clearTimeout(timer);
        s.end('QUIT\r\n');
        s.destroy();
        res(data.split('\r\n')[0]!);
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
  });
}

export function writeConfig(dir: string, text: string, name = 'mailyard.yaml'): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/**
 * A daemon that takes mail for one domain from anyone on 127.0.0.1:port and delivers it to a
 * Maildir under mailRoot; `extra` is appended as more top-level YAML.
 */
export function maildirDaemonConfig(o: { name: string; domain: string; port: number; dataDir: string; logDir: string; mailRoot: string; extra?: string }): string {
  return `server:
  name: ${o.name}
  fqdn: mx.${o.domain}
  dataDir: ${o.dataDir}
  logDir: ${o.logDir}
  admin: { listen: "127.0.0.1:0" }
acceptedDomains:
  - { domainName: ${o.domain}, domainType: Authoritative, default: true }
mailboxDelivery:
  type: maildir
  maildirRoot: ${o.mailRoot}/{domain}/{local}
receiveConnectors:
  - name: Inbound
    bindings: ["127.0.0.1:${o.port}"]
    permissionGroups: [AnonymousUsers]
    authMechanism: [None]
${o.extra ?? ''}`;
}
