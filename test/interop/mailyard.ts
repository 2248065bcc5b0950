// Starting a real Mailyard daemon (`mailyard start`, as a child process) for the interop suite:
// a config written from a few options into a temp dir, the daemon's JSON log collected, and the
// ports it listens on. The peers it talks to come from ../helpers/peers.ts.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonProcess, runCli, writeConfig } from '../helpers/daemon.js';
import { freePorts, peerTempDir, waitFor, canConnect } from '../helpers/peers.js';

export interface MailyardOptions {
  /** Extra top-level YAML appended verbatim (sendConnectors, mailboxDelivery overrides, ...). */
  readonly extra?: string;
  /** mailboxDelivery block (YAML, indented by two spaces); default: maildir under the temp dir. */
  readonly mailboxDelivery?: string;
  /** TLS certificate for the Receive connectors (STARTTLS offered only with one). */
  readonly tls?: { certFile: string; keyFile: string };
  /** DNS server for MX lookups ("127.0.0.1:port"). */
  readonly dnsServer?: string;
  /** Accepted domains besides the Authoritative contoso.test. */
  readonly internalRelayDomains?: readonly string[];
  /** SMTP AUTH users created with `mailyard user add` before the start. */
  readonly users?: readonly { address: string; password: string }[];
}

export interface MailyardInstance {
  readonly dir: string;
  readonly configFile: string;
  /** Anonymous, Internet-facing connector (AnonymousUsers; STARTTLS when tls is given). */
  readonly internetPort: number;
  /** Client submission connector (ExchangeUsers; AUTH PLAIN/LOGIN, after STARTTLS when tls is given). */
  readonly clientPort: number;
  readonly daemon: DaemonProcess;
  /** Maildir of a local recipient under the default maildir delivery. */
  maildirOf(address: string): string;
  stop(): Promise<void>;
}

export async function startMailyard(opts: MailyardOptions = {}): Promise<MailyardInstance> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startMailyardOnce(opts);
    } catch (err) {
      lastErr = err;
      // another process took one of the free ports in between: try again with new ones
      if (!/EADDRINUSE|address already in use|in use/i.test((err as Error).message)) break;
    }
  }
  throw lastErr;
}

async function startMailyardOnce(opts: MailyardOptions): Promise<MailyardInstance> {
  const dir = await peerTempDir('mailyard');
  await mkdir(join(dir, 'mail'), { recursive: true });
  const [internetPort, clientPort, adminPort] = await freePorts(3);
  const auth = opts.tls ? '[Tls, BasicAuth, BasicAuthRequireTLS]' : '[BasicAuth]';
  const lines = [
    'server:',
    '  name: INTEROP01',
    '  fqdn: mailyard.interop.test',
    `  dataDir: ${dir}/spool`,
    `  logDir: ${dir}/log`,
    `  admin: { listen: "127.0.0.1:${adminPort}" }`,
  ];
  if (opts.dnsServer) lines.push('dns:', `  servers: ["${opts.dnsServer}"]`);
  if (opts.tls) lines.push('tls:', `  certFile: ${opts.tls.certFile}`, `  keyFile: ${opts.tls.keyFile}`);
  lines.push('acceptedDomains:', '  - { domainName: contoso.test, domainType: Authoritative, default: true }');
  for (const d of opts.internalRelayDomains ?? []) lines.push(`  - { domainName: ${d}, domainType: InternalRelay }`);
  lines.push('users:', `  file: ${dir}/users.yaml`);
  lines.push('mailboxDelivery:', opts.mailboxDelivery ?? `  type: maildir\n  maildirRoot: ${dir}/mail/{domain}/{local}`);
  lines.push(
    'receiveConnectors:',
    '  - name: Interop Internet',
    '    transportRole: FrontendTransport',
    `    bindings: ["127.0.0.1:${internetPort}"]`,
    `    authMechanism: ${opts.tls ? '[Tls]' : '[None]'}`,
    '    permissionGroups: [AnonymousUsers]',
    `    fqdn: mailyard.interop.test`,
    '    protocolLoggingLevel: Verbose',
    '  - name: Interop Client',
    '    usage: Client',
    '    transportRole: FrontendTransport',
    `    bindings: ["127.0.0.1:${clientPort}"]`,
    `    authMechanism: ${auth}`,
    '    permissionGroups: [ExchangeUsers]',
    `    fqdn: mailyard.interop.test`,
    '    protocolLoggingLevel: Verbose',
    'transportService:',
    '  transientFailureRetryInterval: 2s',
    '  outboundConnectionFailureRetryInterval: 2s',
    '  messageRetryInterval: 2s',
    '  shutdownTimeout: 5s',
  );
  if (opts.extra) lines.push(opts.extra);
  const configFile = writeConfig(dir, lines.join('\n') + '\n');

  for (const u of opts.users ?? []) {
    const r = runCli(['user', 'add', u.address, '--password-stdin', '--config', configFile], { input: `${u.password}\n` });
    if (r.code !== 0) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`mailyard user add ${u.address} failed (${r.code}): ${r.stderr}${r.stdout}`);
    }
  }

  const daemon = new DaemonProcess(configFile);
  const stop = async (): Promise<void> => {
    if (daemon.child.exitCode === null) {
      daemon.signal('SIGTERM');
      await daemon.exitCode(15_000).catch(() => daemon.kill());
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await daemon.waitForLog((l) => l.code === 'STARTED', 20_000);
    await waitFor('the Mailyard listeners', async () => (await canConnect(internetPort)) && (await canConnect(clientPort)), 10_000);
  } catch (err) {
    daemon.kill();
    const logs = daemon.logs.map((l) => JSON.stringify(l)).join('\n');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\nconfig:\n${lines.join('\n')}\nstderr: ${daemon.stderr}\nlog:\n${logs}`);
  }
  return {
    dir,
    configFile,
    internetPort,
    clientPort,
    daemon,
    maildirOf: (address: string) => {
      const at = address.lastIndexOf('@');
      return join(dir, 'mail', address.slice(at + 1).toLowerCase(), address.slice(0, at).toLowerCase());
    },
    stop,
  };
}
