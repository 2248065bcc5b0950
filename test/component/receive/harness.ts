/**
 * Starts a ReceiveService for component tests: connectors on 127.0.0.1:0, a small durable Intake
 * that writes each message to a temp dir and fsyncs it before resolving, a users file, an optional
 * self-signed certificate (made with openssl once per process) and the real protocol log writer.
 */
import type { PressureLevel } from '../../../src/policy/back-pressure.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import pino from 'pino';
import { buildConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';
import type { Config } from '../../../src/config/defaults.js';
import { newMessageId } from '../../../src/model/ids.js';
import type { Intake, IntakeRequest, IntakeResult } from '../../../src/model/intake.js';
import { createProtocolLog, type ProtocolLogWriter } from '../../../src/logging/protocol-log.js';
import { ReceiveService } from '../../../src/receive/service.js';
import { UsersStore, addUser } from '../../../src/users/users-file.js';

export interface Stored {
  readonly id: string;
  readonly req: IntakeRequest;
  /** prepend + body as written to disk. */
  readonly content: string;
}

/** A durable Intake for tests: temp file, fsync, rename; resolves only then. */
export class DiskIntake implements Intake {
  readonly stored: Stored[] = [];
  fail: Error | undefined;
  constructor(readonly dir: string) {}
  async accept(req: IntakeRequest, body: Readable | Buffer): Promise<IntakeResult> {
    const id = newMessageId();
    const tmp = join(this.dir, `${id}.tmp`);
    const fh = await open(tmp, 'w');
    let size = 0;
    try {
      if (req.prepend) await fh.write(req.prepend);
      if (Buffer.isBuffer(body)) {
        await fh.write(body);
        size = body.length;
      } else {
        for await (const chunk of body) {
          await fh.write(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (this.fail) {
      await rm(tmp, { force: true });
      throw this.fail;
    }
    const content = await readFile(tmp, 'latin1');
    this.stored.push({ id, req, content });
    return { id: id as IntakeResult['id'], size };
  }
}

let certCache: { key: Buffer; cert: Buffer } | undefined;
export function selfSignedCert(): { key: Buffer; cert: Buffer } {
  if (certCache) return certCache;
  const dir = mkdtempSync(join(tmpdir(), 'mailyard-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=mail.contoso.test'], { stdio: 'ignore' });
    certCache = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
    return certCache;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let pkiCache: { ca: Buffer; clientKey: Buffer; clientCert: Buffer } | undefined;
/** A test CA and a client certificate it signed for `ex02.contoso.test` (SAN DNS). */
export function testPki(): { ca: Buffer; clientKey: Buffer; clientCert: Buffer } {
  if (pkiCache) return pkiCache;
  const dir = mkdtempSync(join(tmpdir(), 'mailyard-pki-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore', cwd: dir });
  try {
    run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Mailyard Test CA']);
    run(['req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=ex02.contoso.test']);
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:ex02.contoso.test\nextendedKeyUsage=clientAuth\n');
    run(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2', '-extfile', 'ext.cnf']);
    pkiCache = { ca: readFileSync(join(dir, 'ca.pem')), clientKey: readFileSync(join(dir, 'client.key')), clientCert: readFileSync(join(dir, 'client.pem')) };
    return pkiCache;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Harness {
  readonly service: ReceiveService;
  readonly intake: DiskIntake;
  readonly config: Config;
  readonly dir: string;
  readonly logDir: string;
  readonly protocolLog: ProtocolLogWriter;
  /** The real port of a connector's first binding. */
  port(connector?: string): number;
  /** Every protocol log line written so far under logDir (flushes first). */
  protocolLines(): Promise<string[]>;
  /** Polls protocolLines() until one matches `re` (bounded by a deadline). */
  protocolLinesUntil(re: RegExp, timeoutMs?: number): Promise<string[]>;
  close(): Promise<void>;
}

export const TEST_USERS = { 'ann@contoso.com': 'correct horse' } as const;

/** Test connectors: bindings default to 127.0.0.1:0, no tarpit, no greeting delay. */
export async function startHarness(opts: {
  connectors: Array<Record<string, unknown>>;
  acceptedDomains?: Array<Record<string, unknown>>;
  tls?: boolean;
  /** Also trust the test CA for client certificates (organization servers, partners). */
  mutualTls?: boolean;
  users?: boolean;
  extra?: Record<string, unknown>;
  /** Back pressure level asked at MAIL FROM (the daemon's ResourceMonitor). */
  pressure?: () => PressureLevel;
}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'mailyard-recv-'));
  const logDir = join(dir, 'log');
  const spool = await mkdtemp(join(dir, 'spool-'));
  const parsed = configSchema.parse({
    server: { name: 'EX01', fqdn: 'mail.contoso.test', logDir, dataDir: join(dir, 'data') },
    acceptedDomains: opts.acceptedDomains ?? [
      { domainName: 'contoso.com', domainType: 'Authoritative', default: true },
      { domainName: '*.contoso.com', domainType: 'InternalRelay' },
    ],
    receiveConnectors: opts.connectors.map((c) => ({ bindings: ['127.0.0.1:0'], tarpitInterval: 0, authTarpitInterval: 0, protocolLoggingLevel: 'Verbose', ...c })),
    ...(opts.extra ?? {}),
  });
  const config = buildConfig(parsed, '<test>');
  const logger = pino({ level: process.env.MAILYARD_TEST_LOG ?? 'silent' });
  const protocolLog = createProtocolLog(logDir, config.transportService, logger);
  const intake = new DiskIntake(spool);
  let users: UsersStore | undefined;
  if (opts.users !== false) {
    const file = join(dir, 'users.yaml');
    for (const [u, p] of Object.entries(TEST_USERS)) await addUser(file, u, p);
    users = new UsersStore(file);
  }
  const service = new ReceiveService({
    config,
    intake,
    logger,
    protocolLog,
    ...(opts.tls || opts.mutualTls ? { tls: { ...selfSignedCert(), ...(opts.mutualTls ? { ca: testPki().ca } : {}) } } : {}),
    ...(users ? { users: (l: string, p: string) => users!.verify(l, p) } : {}),
    ...(opts.pressure ? { pressure: opts.pressure } : {}),
  });
  await service.start();
  const harness: Harness = {
    service,
    intake,
    config,
    dir,
    logDir,
    protocolLog,
    port(connector?: string) {
      const name = connector ?? config.receiveConnectors[0]!.name;
      const c = config.receiveConnectors.find((x) => x.name === name)!;
      const ep = service.address().find((a) => a.binding === c.bindings[0]);
      if (!ep) throw new Error(`no listener for ${name}`);
      return ep.port;
    },
    async protocolLines() {
      await protocolLog.flush();
      const out: string[] = [];
      const walk = async (d: string): Promise<void> => {
        for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
          if (e.isDirectory()) await walk(join(d, e.name));
          else if (e.name.endsWith('.LOG')) out.push(...(await readFile(join(d, e.name), 'utf8')).split('\r\n').filter((l) => l && !l.startsWith('#')));
        }
      };
      await walk(logDir);
      return out;
    },
    async protocolLinesUntil(re: RegExp, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const lines = await harness.protocolLines();
        if (lines.some((l) => re.test(l)) || Date.now() > deadline) return lines;
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async close() {
      await service.stop(200);
      await protocolLog.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** A minimal message. */
export function message(headers: Record<string, string> = {}, body = 'Hello.\r\n'): string {
  const h = { From: 'ann@fabrikam.com', To: 'bob@contoso.com', Subject: 'test', ...headers };
  return `${Object.entries(h)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')}\r\n\r\n${body}`;
}
