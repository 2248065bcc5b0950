// Real third-party peers for the interop suite: a private Postfix, a private Dovecot (LMTP, IMAP
// and a SASL auth listener), dnsmasq as a DNS server, swaks as an SMTP client, and openssl for
// throw-away certificates. Every peer lives under its own temp dir, listens on 127.0.0.1 only, and
// is stopped by the returned `stop()` (also on process exit). Nothing touches the system's own
// Postfix or Dovecot configuration.
//
// Missing peers: `requirePeers(t, [...])` marks the test skipped BY NAME (the skip reason names
// the missing program and the package that brings it) when CI is not set, and fails the test
// when CI=true, so that CI can never pass by silently not running the interop suite.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, mkdir, writeFile, readFile, readdir, rm, chmod, chown } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

// ---------------------------------------------------------------------------------------------
// Finding peers, skipping by name

const SEARCH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Debian package that brings each peer program (for the skip message). */
const PACKAGE_OF: Record<string, string> = {
  postfix: 'postfix',
  postconf: 'postfix',
  dovecot: 'dovecot-core dovecot-imapd dovecot-lmtpd',
  swaks: 'swaks',
  dnsmasq: 'dnsmasq-base',
  openssl: 'openssl',
};

/** Absolute path of a program, looked up in PATH and the usual sbin folders; null when absent. */
export function findProgram(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH_DIRS];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

export const inCI = (): boolean => {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
};

export const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/** Why the named peers cannot run here, or null when they all can. */
export function missingPeers(programs: readonly string[], opts: { root?: boolean } = {}): string | null {
  const missing = programs.filter((p) => findProgram(p) === null);
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((m) => PACKAGE_OF[m] ?? m))].join(' ');
    return `${missing.join(', ')} not installed: apt-get install ${pkgs}`;
  }
  if (opts.root && !isRoot()) return `${programs[0] ?? 'this peer'} needs root to start a private instance (run the interop suite as root)`;
  return null;
}

/**
 * Returns true when the peers are there. Otherwise: under CI=true throws (the test fails);
 * elsewhere marks the test skipped with a reason naming what is missing, and returns false
 * (the caller returns at once).
 */
export function requirePeers(t: TestContext, programs: readonly string[], opts: { root?: boolean } = {}): boolean {
  const why = missingPeers(programs, opts);
  if (why === null) return true;
  if (inCI()) throw new Error(`interop peer unavailable under CI=true: ${why}`);
  t.skip(why);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Small utilities

/** A fresh temp dir under os.tmpdir(), readable by the peers' own users (postfix, dovecot). */
export async function peerTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `mailyard-${prefix}-`));
  await chmod(dir, 0o755);
  return dir;
}

/**
 * `count` distinct loopback TCP ports that were free a moment ago (for peers that cannot listen on
 * port 0). All are held at once while they are chosen: ports picked one after the other can come
 * back equal, since the kernel may hand out a port it just got back.
 */
export async function freePorts(count: 2, host?: string): Promise<[number, number]>;
export async function freePorts(count: 3, host?: string): Promise<[number, number, number]>;
export async function freePorts(count: number, host?: string): Promise<number[]>;
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (srv) =>
          new Promise<number>((resolve, reject) => {
            srv.once('error', reject);
            srv.listen(0, host, () => {
              const addr = srv.address();
              resolve(typeof addr === 'object' && addr !== null ? addr.port : 0);
            });
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((srv) => new Promise<void>((resolve) => (srv.listening ? srv.close(() => resolve()) : resolve()))));
  }
}

/** A loopback TCP port that was free a moment ago. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return (await freePorts(1, host))[0]!;
}

/**
 * A random loopback address (127.100-250.x.y) on which `port` can be bound right now. For peers
 * that must sit on a fixed port, such as an MX on 25: a private address keeps parallel tests apart.
 * Throws when the port is taken on every address tried (a wildcard listener on this machine).
 */
export async function loopbackAddressFor(port: number): Promise<string> {
  let lastErr: unknown;
  for (let i = 0; i < 5; i++) {
    const a = 100 + Math.floor(Math.random() * 151);
    const b = Math.floor(Math.random() * 256);
    const c = 1 + Math.floor(Math.random() * 254);
    const host = `127.${a}.${b}.${c}`;
    try {
      await new Promise<void>((resolve, reject) => {
        const srv = createServer();
        srv.once('error', reject);
        srv.listen(port, host, () => srv.close(() => resolve()));
      });
      return host;
    } catch (err) {
      lastErr = err;
    }
  }
  throw new Error(`port ${port} cannot be bound on loopback addresses (a wildcard listener?): ${(lastErr as Error).message}`);
}

/** Polls `check` until it returns a truthy value or the deadline passes (then throws). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const extra = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${extra}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves true once something accepts TCP connections on host:port. */
export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}

async function readTail(path: string, lines = 30): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * True when a peer failed to start because its port was taken (worth another try): the peer says
 * so, or it never answered on its port within waitFor's time ("timed out after N ms waiting ...").
 */
function portClash(err: unknown): boolean {
  const m = err instanceof Error ? err.message : String(err);
  return /address already in use|EADDRINUSE|bind.*in use|timed out (after \d+ ms )?waiting|duplicate listener/i.test(m);
}

/** Children still running when the process exits are killed (a failed test must not leak peers). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function run(cmd: string, args: readonly string[], timeoutMs = 20_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
}

// ---------------------------------------------------------------------------------------------
// Certificates

export interface TestCertificate {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** A self-signed certificate for `names` (DNS names or IPs) made with openssl, valid 2 days. */
export async function makeCertificate(dir: string, names: readonly string[] = ['localhost', '127.0.0.1']): Promise<TestCertificate> {
  await mkdir(dir, { recursive: true });
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const san = names.map((n) => (/^[0-9.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  const r = run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-keyout', keyFile, '-out', certFile,
    '-subj', `/CN=${names[0] ?? 'localhost'}`, '-addext', `subjectAltName=${san}`,
  ]);
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  await chmod(keyFile, 0o644); // test key, read by peers running as their own users
  return { certFile, keyFile, cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
}

// ---------------------------------------------------------------------------------------------
// Maildir reading (Postfix's virtual agent and Dovecot both write Maildir)

export interface MaildirMessage {
  file: string;
  raw: string;
}

/** Messages in `maildir/new` and `maildir/cur`, oldest name first; [] when the folder is absent. */
export async function readMaildir(maildir: string): Promise<MaildirMessage[]> {
  const out: MaildirMessage[] = [];
  for (const sub of ['new', 'cur']) {
    let names: string[];
    try {
      names = (await readdir(join(maildir, sub))).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const file = join(maildir, sub, n);
      out.push({ file, raw: await readFile(file, 'utf8') });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Postfix

export interface PostfixOptions {
  /** Domains Postfix accepts as final destination, delivered by its virtual agent to one Maildir. */
  domains?: readonly string[];
  /** Relay everything else to this host (Postfix as a sender towards Mailyard). */
  relayTo?: { host: string; port: number };
  /** Postfix's SMTP client uses STARTTLS when the next hop offers it (smtp_tls_security_level = may). */
  clientTls?: boolean;
  /** Clients allowed to relay without AUTH (Postfix `mynetworks`); default 127.0.0.0/8. */
  mynetworks?: string;
  /** Offer STARTTLS with this certificate. */
  tls?: TestCertificate;
  /** Offer AUTH through a Dovecot auth listener on this loopback port (see DovecotPeer.authPort). */
  saslAuthPort?: number;
  /** Accept mail only from clients that authenticated (needs saslAuthPort). */
  requireAuth?: boolean;
  /** Reject mail to these addresses with 550 5.1.1 (to test permanent failures). */
  rejectRecipients?: readonly string[];
  /** Hostname Postfix announces. */
  hostname?: string;
  /** Loopback address smtpd listens on (default 127.0.0.1; any 127.x.y.z works on Linux). */
  listenAddress?: string;
  /** Fixed smtpd port (MX tests need 25: pair it with a random `listenAddress` from loopbackAddressFor). */
  port?: number;
}

export interface PostfixPeer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  /** Maildir that receives all mail for `domains`. */
  readonly maildir: string;
  /** Postfix's own log (maillog_file). */
  log(): Promise<string>;
  messages(): Promise<MaildirMessage[]>;
  stop(): Promise<void>;
}

const MASTER_CF_STOCK = `pickup     unix n - n 60 1 pickup
cleanup    unix n - n - 0 cleanup
qmgr       unix n - n 300 1 qmgr
rewrite    unix - - n - - trivial-rewrite
bounce     unix - - n - 0 bounce
defer      unix - - n - 0 bounce
trace      unix - - n - 0 bounce
verify     unix - - n - 1 verify
flush      unix n - n 1000? 0 flush
proxymap   unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp       unix - - n - - smtp
relay      unix - - n - - smtp
showq      unix n - n - - showq
error      unix - - n - - error
retry      unix - - n - - error
discard    unix - - n - - discard
virtual    unix - n n - - virtual
anvil      unix - - n - 1 anvil
scache     unix - - n - 1 scache
tlsmgr     unix - - n 1000? 1 tlsmgr
postlog    unix-dgram n - n - 1 postlogd
`;

/**
 * Starts a private Postfix (`postfix -c DIR start`) whose config, queue, data, log and Maildir
 * all live under a temp dir, with smtpd on 127.0.0.1:<free port>. Needs root (Postfix's master
 * does). Mail for `domains` is delivered to `maildir`; other mail goes to `relayTo`, if given.
 */
export async function startPostfix(opts: PostfixOptions = {}): Promise<PostfixPeer> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startPostfixOnce(opts, opts.port ?? (await freePort(opts.listenAddress ?? '127.0.0.1')));
    } catch (err) {
      lastErr = err;
      if (!portClash(err)) break; // retry only when the port was taken in between
    }
  }
  throw lastErr;
}

async function startPostfixOnce(opts: PostfixOptions, port: number): Promise<PostfixPeer> {
  const dir = await peerTempDir('postfix');
  const etc = join(dir, 'etc');
  const spool = join(dir, 'spool');
  const data = join(dir, 'data');
  const logDir = join(dir, 'log');
  const mailBase = join(dir, 'mail');
  for (const d of [etc, spool, data, logDir, mailBase]) await mkdir(d, { recursive: true });
  const pf = passwdIds('postfix');
  await chown(data, pf.uid, pf.gid);
  // The virtual agent writes as nobody (uid 65534): give it the Maildir base.
  await chown(mailBase, 65534, 65534);
  const logFile = join(logDir, 'maillog');
  const domains = opts.domains ?? [];
  const restrictions: string[] = ['permit_mynetworks'];
  if (opts.saslAuthPort !== undefined) restrictions.push('permit_sasl_authenticated');
  restrictions.push('reject_unauth_destination');
  const lines = [
    '# Mailyard interop: a private Postfix that lives entirely under this directory',
    'compatibility_level = 3.6',
    `queue_directory = ${spool}`,
    `data_directory = ${data}`,
    'meta_directory = /etc/postfix',
    'shlib_directory = /usr/lib/postfix',
    'daemon_directory = /usr/lib/postfix/sbin',
    'command_directory = /usr/sbin',
    'mail_owner = postfix',
    'setgid_group = postdrop',
    'syslog_name = postfix-mailyard-interop',
    `maillog_file = ${logFile}`,
    `maillog_file_prefixes = ${logDir}`,
    `myhostname = ${opts.hostname ?? 'postfix.interop.test'}`,
    'mydomain = interop.test',
    'myorigin = $myhostname',
    'mydestination =',
    'local_recipient_maps =',
    'alias_maps =',
    'alias_database =',
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    `mynetworks = ${opts.mynetworks ?? '127.0.0.0/8'}`,
    `smtpd_relay_restrictions = ${restrictions.join(', ')}`,
    'smtp_dns_support_level = disabled',
    'smtpd_banner = $myhostname ESMTP interop',
    'biff = no',
    'notify_classes =',
    'message_size_limit = 52428800',
    'virtual_mailbox_limit = 0',
    // virtual delivery: every accepted recipient lands in one Maildir, Delivered-To tells them apart
    `virtual_mailbox_domains = ${domains.join(' ')}`,
    `virtual_mailbox_base = ${mailBase}`,
    'virtual_mailbox_maps = static:inbox/',
    'virtual_uid_maps = static:65534',
    'virtual_gid_maps = static:65534',
    'virtual_minimum_uid = 100',
  ];
  if (opts.relayTo) lines.push(`relayhost = [${opts.relayTo.host}]:${opts.relayTo.port}`);
  if (opts.clientTls) lines.push('smtp_tls_security_level = may', 'smtp_tls_loglevel = 1');
  const rcptRestrictions: string[] = [];
  if (opts.rejectRecipients && opts.rejectRecipients.length > 0) {
    const inline = opts.rejectRecipients.map((a) => `{ ${a} = 550 5.1.1 no such user here }`).join(', ');
    rcptRestrictions.push(`check_recipient_access inline:{ ${inline} }`);
  }
  if (opts.requireAuth) rcptRestrictions.push('permit_sasl_authenticated', 'reject');
  if (rcptRestrictions.length > 0) lines.push(`smtpd_recipient_restrictions = ${rcptRestrictions.join(', ')}`);
  if (opts.tls) {
    lines.push(
      `smtpd_tls_cert_file = ${opts.tls.certFile}`,
      `smtpd_tls_key_file = ${opts.tls.keyFile}`,
      'smtpd_tls_security_level = may',
      'smtpd_tls_received_header = yes',
      'smtpd_tls_loglevel = 1',
    );
  }
  if (opts.saslAuthPort !== undefined) {
    lines.push(
      'smtpd_sasl_auth_enable = yes',
      'smtpd_sasl_type = dovecot',
      `smtpd_sasl_path = inet:127.0.0.1:${opts.saslAuthPort}`,
      'smtpd_sasl_authenticated_header = yes',
      `smtpd_tls_auth_only = ${opts.tls ? 'yes' : 'no'}`,
    );
  }
  await writeFile(join(etc, 'main.cf'), lines.join('\n') + '\n');
  const host = opts.listenAddress ?? '127.0.0.1';
  await writeFile(join(etc, 'master.cf'), `${host}:${port} inet n - n - - smtpd\n${MASTER_CF_STOCK}`);

  const start = run('postfix', ['-c', etc, 'start']);
  const stopPostfix = async (): Promise<void> => {
    run('postfix', ['-c', etc, 'stop']);
    const pid = await masterPid(spool);
    if (pid !== null) {
      await waitFor('postfix master to exit', () => !pidAlive(pid), 15_000).catch(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      });
    }
  };
  if (start.code !== 0) {
    await stopPostfix();
    throw new Error(`postfix -c ${etc} start failed: ${start.stderr}\n${await readTail(logFile)}`);
  }
  try {
    await waitFor(`postfix smtpd on ${host}:${port}`, () => canConnect(port, host), 15_000, 100);
  } catch (err) {
    const tail = await readTail(logFile);
    await stopPostfix();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${tail}`);
  }
  const pid = await masterPid(spool);
  process.once('exit', () => {
    if (pid !== null && pidAlive(pid)) spawnSync('postfix', ['-c', etc, 'stop']);
  });
  const maildir = join(mailBase, 'inbox');
  let stopped = false;
  return {
    host,
    port,
    dir,
    maildir,
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    messages: () => readMaildir(maildir),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stopPostfix();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function masterPid(spool: string): Promise<number | null> {
  try {
    const n = Number.parseInt((await readFile(join(spool, 'pid', 'master.pid'), 'utf8')).trim(), 10);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function passwdIds(user: string): { uid: number; gid: number } {
  const f = run('getent', ['passwd', user]).stdout.split(':');
  const uid = Number.parseInt(f[2] ?? '', 10);
  const gid = Number.parseInt(f[3] ?? '', 10);
  if (!Number.isFinite(uid) || !Number.isFinite(gid)) throw new Error(`no passwd entry for ${user}`);
  return { uid, gid };
}

// ---------------------------------------------------------------------------------------------
// Dovecot

export interface DovecotUser {
  /** Full address, used as login name and LMTP recipient. */
  address: string;
  password: string;
}

export interface DovecotPeer {
  readonly host: string;
  readonly lmtpPort: number;
  readonly imapPort: number;
  /** Dovecot auth service for Postfix (`smtpd_sasl_type = dovecot`, `inet:` path). */
  readonly authPort: number;
  readonly dir: string;
  /** Maildir of a user (`{dir}/mail/{domain}/{local}/Maildir`). */
  maildirOf(address: string): string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts a private Dovecot in the foreground (`dovecot -F -c CONF`) with LMTP, IMAP (plaintext
 * logins allowed, loopback only) and an auth listener on free loopback ports, users from a
 * passwd-file, and Maildirs under the temp dir. Works as root (mail stored as uid 65534) and as
 * an ordinary user (everything runs as that user).
 */
export async function startDovecot(users: readonly DovecotUser[]): Promise<DovecotPeer> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startDovecotOnce(users, ...(await freePorts(3)));
    } catch (err) {
      lastErr = err;
      if (!portClash(err)) break;
    }
  }
  throw lastErr;
}

async function startDovecotOnce(users: readonly DovecotUser[], lmtpPort: number, imapPort: number, authPort: number): Promise<DovecotPeer> {
  const dir = await peerTempDir('dovecot');
  const runDir = join(dir, 'run');
  const mailRoot = join(dir, 'mail');
  await mkdir(runDir, { recursive: true });
  await mkdir(mailRoot, { recursive: true });
  const root = isRoot();
  const mailUid = root ? 65534 : (process.getuid?.() ?? 0);
  const mailGid = root ? 65534 : (process.getgid?.() ?? 0);
  if (root) await chown(mailRoot, mailUid, mailGid);
  const me = root ? null : (run('id', ['-un']).stdout.trim() || null);
  const myGroup = root ? null : (run('id', ['-gn']).stdout.trim() || null);
  const logFile = join(dir, 'dovecot.log');
  const passwd = users
    .map((u) => {
      if (/[:\n]/.test(u.address) || /[:\n]/.test(u.password)) throw new Error('no ":" or newline in test users');
      const [local, domain] = splitAddress(u.address);
      return `${u.address}:{PLAIN}${u.password}:${mailUid}:${mailGid}::${join(mailRoot, domain, local)}::`;
    })
    .join('\n');
  await writeFile(join(dir, 'users'), passwd + '\n', { mode: 0o644 });
  const conf = [
    '# Mailyard interop: a private Dovecot under this directory',
    `base_dir = ${runDir}`,
    `state_dir = ${join(dir, 'state')}`,
    `log_path = ${logFile}`,
    `instance_name = mailyard-interop-${lmtpPort}`,
    'protocols = imap lmtp',
    'listen = 127.0.0.1',
    'ssl = no',
    'disable_plaintext_auth = no',
    'auth_mechanisms = plain login',
    'auth_verbose = yes',
    'postmaster_address = postmaster@interop.test',
    'hostname = dovecot.interop.test',
    'mail_location = maildir:~/Maildir',
    'first_valid_uid = 1',
    'lmtp_save_to_detail_mailbox = no',
    'recipient_delimiter = +',
    ...(me ? [`default_internal_user = ${me}`, `default_login_user = ${me}`] : []),
    ...(myGroup ? [`default_internal_group = ${myGroup}`] : []),
    'passdb {',
    '  driver = passwd-file',
    `  args = scheme=PLAIN username_format=%u ${join(dir, 'users')}`,
    '}',
    'userdb {',
    '  driver = passwd-file',
    `  args = username_format=%u ${join(dir, 'users')}`,
    '}',
    'service imap-login {',
    `  inet_listener imap {\n    address = 127.0.0.1\n    port = ${imapPort}\n  }`,
    '  inet_listener imaps {\n    port = 0\n  }',
    '}',
    'service lmtp {',
    `  inet_listener lmtp {\n    address = 127.0.0.1\n    port = ${lmtpPort}\n  }`,
    '}',
    'service auth {',
    `  inet_listener {\n    address = 127.0.0.1\n    port = ${authPort}\n  }`,
    '}',
    'service anvil {\n  chroot =\n}',
    'service imap-login {\n  chroot =\n}',
    'protocol lmtp {\n  auth_username_format = %u\n}',
  ].join('\n');
  const confFile = join(dir, 'dovecot.conf');
  await writeFile(confFile, conf + '\n', { mode: 0o644 });

  const child = track(spawn('dovecot', ['-F', '-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const stop = async (): Promise<void> => {
    await stopChild(child);
  };
  try {
    // A Dovecot that exits (a bad config, a port taken) ends the wait at once, not after 15 s.
    const state = await waitFor(
      'dovecot LMTP, IMAP and auth listeners',
      async () => {
        if (child.exitCode !== null) return 'exited';
        return (await canConnect(lmtpPort)) && (await canConnect(imapPort)) && (await canConnect(authPort)) && 'listening';
      },
      15_000,
      100,
    );
    if (state === 'exited') throw new Error(`dovecot exited ${child.exitCode}: ${output}`);
  } catch (err) {
    const tail = await readTail(logFile);
    await stop();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${output}\n${tail}`);
  }
  let stopped = false;
  return {
    host: '127.0.0.1',
    lmtpPort,
    imapPort,
    authPort,
    dir,
    maildirOf: (address: string) => {
      const [local, domain] = splitAddress(address);
      return join(mailRoot, domain, local, 'Maildir');
    },
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function splitAddress(address: string): [string, string] {
  const at = address.lastIndexOf('@');
  if (at <= 0) throw new Error(`not an address: ${address}`);
  return [address.slice(0, at), address.slice(at + 1)];
}

// ---------------------------------------------------------------------------------------------
// dnsmasq

export interface DnsZone {
  /** MX records: domain → exchanger host with preference. */
  mx?: readonly { domain: string; host: string; preference: number }[];
  /** A / AAAA records. */
  hosts?: readonly { name: string; address: string }[];
  /** TXT records. */
  txt?: readonly { name: string; text: string }[];
  /** Domains answered locally: any name under them that is not declared gets NXDOMAIN. */
  local?: readonly string[];
}

export interface DnsmasqPeer {
  readonly host: string;
  readonly port: number;
  /** `host:port` as `dns.servers` takes it. */
  readonly server: string;
  stop(): Promise<void>;
}

/**
 * Starts dnsmasq in the foreground as an authoritative-for-the-test DNS server on
 * 127.0.0.1:<free port>, answering only the records given (no upstream, no /etc/hosts), so no
 * query can leak to the real network.
 */
export async function startDnsmasq(zone: DnsZone): Promise<DnsmasqPeer> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startDnsmasqOnce(zone, await freePort());
    } catch (err) {
      lastErr = err;
      if (!portClash(err)) break;
    }
  }
  throw lastErr;
}

async function startDnsmasqOnce(zone: DnsZone, port: number): Promise<DnsmasqPeer> {
  const args = [
    '--keep-in-foreground',
    '--no-daemon',
    '--conf-file=/dev/null',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    '--pid-file=',
    '--log-facility=-',
    '--log-queries',
  ];
  if (isRoot()) args.push('--user=nobody', '--group=nogroup');
  const localDomains = new Set<string>(zone.local ?? []);
  for (const m of zone.mx ?? []) {
    args.push(`--mx-host=${m.domain},${m.host},${m.preference}`);
    localDomains.add(m.domain);
  }
  for (const h of zone.hosts ?? []) args.push(`--host-record=${h.name},${h.address}`);
  for (const x of zone.txt ?? []) args.push(`--txt-record=${x.name},${x.text}`);
  for (const d of localDomains) args.push(`--local=/${d}/`);
  const child = track(spawn('dnsmasq', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  try {
    await waitFor(
      `dnsmasq on 127.0.0.1:${port}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`dnsmasq exited ${child.exitCode}: ${output}`);
        return canConnect(port); // dnsmasq also serves DNS over TCP on the same port
      },
      10_000,
      50,
    );
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return {
    host: '127.0.0.1',
    port,
    server: `127.0.0.1:${port}`,
    stop: () => stopChild(child),
  };
}

// ---------------------------------------------------------------------------------------------
// swaks

export interface SwaksResult {
  code: number;
  /** swaks' transcript (stdout and stderr together, in order of arrival). */
  transcript: string;
}

/**
 * Runs swaks with the given arguments (e.g. ['--server', '127.0.0.1:2525', '--to', 'a@b']) and a
 * bounded time. `--timeout` is added so no SMTP wait exceeds it.
 */
export function swaks(args: readonly string[], timeoutMs = 30_000): Promise<SwaksResult> {
  return new Promise((resolve, reject) => {
    const child = track(spawn('swaks', ['--timeout', String(Math.ceil(timeoutMs / 1000)), ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let transcript = '';
    child.stdout?.on('data', (d: Buffer) => (transcript += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (transcript += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 5000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), transcript });
    });
  });
}

/** True when `path` exists (small convenience for tests). */
export const exists = (path: string): boolean => existsSync(path);

// ---------------------------------------------------------------------------------------------
// A minimal LMTP client (RFC 2033), to show Dovecot's LMTP works without Mailyard

export interface LmtpReplies {
  /** The reply to each RCPT TO, in order. */
  rcpt: string[];
  /** One reply per accepted recipient after the final dot (LMTP's per-recipient replies). */
  data: string[];
}

/** Sends one message over LMTP and returns the raw reply lines (last line of each reply). */
export async function sendLmtp(opts: { host: string; port: number; from: string; to: readonly string[]; data: string; timeoutMs?: number }): Promise<LmtpReplies> {
  const sock = connect({ host: opts.host, port: opts.port });
  sock.setEncoding('utf8');
  sock.setTimeout(opts.timeoutMs ?? 10_000, () => sock.destroy(new Error('LMTP timeout')));
  let buf = '';
  const waiting: Array<(line: string) => void> = [];
  const ready: string[] = [];
  let failure: Error | null = null;
  const failWaiters = (err: Error): void => {
    failure = err;
    for (const w of waiting.splice(0)) w(`ERR ${err.message}`);
  };
  sock.on('error', failWaiters);
  sock.on('close', () => failWaiters(new Error('LMTP connection closed')));
  sock.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (/^\d{3}-/.test(line)) continue; // continuation line of a multi-line reply
      const w = waiting.shift();
      if (w) w(line);
      else ready.push(line);
    }
  });
  const reply = (): Promise<string> =>
    new Promise((resolve) => {
      const r = ready.shift();
      if (r !== undefined) resolve(r);
      else if (failure) resolve(`ERR ${failure.message}`);
      else waiting.push(resolve);
    });
  const send = (line: string): void => {
    sock.write(line + '\r\n');
  };
  try {
    const greeting = await reply();
    if (!greeting.startsWith('220')) throw new Error(`LMTP greeting: ${greeting}`);
    send('LHLO mailyard-interop.test');
    const lhlo = await reply();
    if (!lhlo.startsWith('250')) throw new Error(`LHLO: ${lhlo}`);
    send(`MAIL FROM:<${opts.from}>`);
    const mail = await reply();
    if (!mail.startsWith('250')) throw new Error(`MAIL: ${mail}`);
    const rcpt: string[] = [];
    for (const r of opts.to) {
      send(`RCPT TO:<${r}>`);
      rcpt.push(await reply());
    }
    const accepted = rcpt.filter((l) => l.startsWith('250')).length;
    const data: string[] = [];
    if (accepted > 0) {
      send('DATA');
      const go = await reply();
      if (!go.startsWith('354')) throw new Error(`DATA: ${go}`);
      const body = opts.data.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
      sock.write(body.endsWith('\r\n') ? body : body + '\r\n');
      send('.');
      for (let k = 0; k < accepted; k++) data.push(await reply());
    }
    send('QUIT');
    await reply();
    return { rcpt, data };
  } finally {
    sock.destroy();
  }
}

/** The values of every header field `name` in a raw message, unfolded (continuation lines joined). */
export function headerValues(raw: string, name: string): string[] {
  const end = raw.search(/\r?\n\r?\n/);
  const head = (end < 0 ? raw : raw.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const prefix = `${name.toLowerCase()}:`;
  return head
    .split(/\r?\n/)
    .filter((l) => l.toLowerCase().startsWith(prefix))
    .map((l) => l.slice(prefix.length).trim());
}
