/**
 * An in-process SMTP sink for delivery tests, built on smtp-server: listens on loopback (port 0
 * unless told), records every connection, AUTH attempt, envelope (with MAIL/RCPT parameters) and
 * the message bytes as received, and replies as the test scripts it (per recipient, at MAIL FROM,
 * after DATA). Extensions can be switched off one by one (STARTTLS, AUTH, DSN, 8BITMIME, SMTPUTF8,
 * PIPELINING). `wire` holds the raw bytes of plaintext sessions, before any dot-unstuffing.
 *
 * Also: `makeTestPki()` creates a throw-away CA and a server certificate with openssl.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

const run = promisify(execFile);

export interface SinkMessage {
  readonly sessionId: string;
  readonly mailFrom: string;
  readonly mailArgs: Record<string, unknown>;
  readonly rcptTo: readonly { readonly address: string; readonly args: Record<string, unknown> }[];
  /** Message bytes after dot-unstuffing, as the DATA reader delivered them. */
  readonly data: Buffer;
  readonly secure: boolean;
  readonly user?: string;
  /** The local address the client connected to (tells sinks on 127.0.0.x apart). */
  readonly localAddress: string;
  /** The client's address (the Send connector's sourceIPAddress). */
  readonly remoteAddress: string;
}

export interface SinkAuthAttempt {
  readonly username: string;
  readonly secure: boolean;
}

export interface SinkOptions {
  readonly host?: string;
  readonly port?: number;
  /** Offer STARTTLS with this key and certificate (PEM). */
  readonly tls?: { readonly key: Buffer | string; readonly cert: Buffer | string; readonly maxVersion?: 'TLSv1.2' | 'TLSv1.3' };
  /** Offer AUTH PLAIN/LOGIN and accept these credentials. Insecure AUTH is allowed by the sink. */
  readonly auth?: { readonly username: string; readonly password: string };
  /** SASL mechanisms offered with AUTH (default PLAIN and LOGIN). */
  readonly authMethods?: readonly string[];
  readonly dsn?: boolean; // default true
  readonly eightBitMime?: boolean; // default true
  readonly smtputf8?: boolean; // default true
  readonly pipelining?: boolean; // default true
  /** Replies by recipient address (lower case): "450 4.2.1 Mailbox busy", "550 5.1.1 No such user". */
  readonly rcptReplies?: Record<string, string>;
  /** Reply to MAIL FROM instead of accepting. */
  readonly mailReply?: string;
  /** Reply after the data instead of 250. */
  readonly dataReply?: string;
  /** Greeting refused: every connection gets this reply (e.g. "421 4.3.2 Busy"). */
  readonly connectReply?: string;
  /** Read the data but never answer it (for timeout tests). */
  readonly stallData?: boolean;
}

export interface SmtpSink {
  readonly host: string;
  readonly port: number;
  readonly messages: SinkMessage[];
  readonly authAttempts: SinkAuthAttempt[];
  /** Number of TCP connections accepted. */
  connections: number;
  /** Connections closed so far, and the most that were open at once. */
  readonly closed: number;
  readonly maxConcurrent: number;
  /** Raw bytes received per connection (plaintext sessions; encrypted bytes after STARTTLS). */
  readonly wire: Buffer[][];
  /** Waits until `predicate` holds, polling; rejects after timeoutMs. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

function replyError(text: string): Error & { responseCode: number } {
  const m = /^(\d{3})\s+(.*)$/s.exec(text);
  const err = new Error(m ? m[2] : text) as Error & { responseCode: number };
  err.responseCode = m ? Number(m[1]) : 550;
  return err;
}

export async function startSmtpSink(opts: SinkOptions = {}): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const authAttempts: SinkAuthAttempt[] = [];
  const wire: Buffer[][] = [];
  const host = opts.host ?? '127.0.0.1';
  const sink = { connections: 0, closed: 0, maxConcurrent: 0 };

  const options: SMTPServerOptions = {
    name: 'sink.test',
    logger: false,
    secure: false,
    disableReverseLookup: true,
    closeTimeout: 200,
    hideENHANCEDSTATUSCODES: true, // scripted replies carry their own enhanced codes
    hideDSN: opts.dsn === false,
    hide8BITMIME: opts.eightBitMime === false,
    hideSMTPUTF8: opts.smtputf8 === false,
    hidePIPELINING: opts.pipelining === false,
    allowInsecureAuth: true,
    authOptional: true,
    authMethods: [...(opts.authMethods ?? ['PLAIN', 'LOGIN'])],
    disabledCommands: [...(opts.tls ? [] : ['STARTTLS']), ...(opts.auth ? [] : ['AUTH'])],
    ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert, ...(opts.tls.maxVersion ? { maxVersion: opts.tls.maxVersion } : {}) } : {}),
    size: 50 * 1024 * 1024,
    onConnect(_session, cb) {
      sink.connections++;
      sink.maxConcurrent = Math.max(sink.maxConcurrent, sink.connections - sink.closed);
      if (opts.connectReply) return cb(replyError(opts.connectReply));
      cb();
    },
    onClose() {
      sink.closed++;
    },
    onAuth(auth, session, cb) {
      authAttempts.push({ username: auth.username ?? '', secure: !!session.secure });
      if (opts.auth && auth.username === opts.auth.username && auth.password === opts.auth.password) return cb(null, { user: auth.username });
      return cb(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
    },
    onMailFrom(_address, _session, cb) {
      if (opts.mailReply) return cb(replyError(opts.mailReply));
      cb();
    },
    onRcptTo(address, _session, cb) {
      const scripted = opts.rcptReplies?.[address.address.toLowerCase()];
      if (scripted && !scripted.startsWith('2')) return cb(replyError(scripted));
      cb();
    },
    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const env = session.envelope;
        messages.push({
          sessionId: session.id,
          mailFrom: env.mailFrom ? env.mailFrom.address : '',
          mailArgs: (env.mailFrom ? (env.mailFrom.args as Record<string, unknown>) : {}) ?? {},
          rcptTo: env.rcptTo.map((r) => ({ address: r.address, args: (r.args as Record<string, unknown>) ?? {} })),
          data: Buffer.concat(chunks),
          secure: !!session.secure,
          ...(session.user ? { user: String(session.user) } : {}),
          localAddress: session.localAddress,
          remoteAddress: session.remoteAddress,
        });
        if (opts.stallData) return;
        if (opts.dataReply) return cb(replyError(opts.dataReply));
        cb(null, '2.0.0 Ok: queued');
      });
    },
  };
  const server = new SMTPServer(options);
  server.on('error', () => {});
  const netServer = (server as unknown as { server: import('node:net').Server }).server;
  netServer.on('connection', (socket: Socket) => {
    const chunks: Buffer[] = [];
    wire.push(chunks);
    socket.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    netServer.once('error', onError);
    server.listen(opts.port ?? 0, host, () => {
      netServer.removeListener('error', onError);
      resolve();
    });
  });
  const address = netServer.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    host,
    port,
    messages,
    authAttempts,
    wire,
    get connections() {
      return sink.connections;
    },
    set connections(v: number) {
      sink.connections = v;
    },
    get closed() {
      return sink.closed;
    },
    get maxConcurrent() {
      return sink.maxConcurrent;
    },
    async waitFor(predicate, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error('sink: condition not met before the deadline');
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Starts a second sink on another loopback address with the same port (for MX tests). */
export async function startSinkOnPort(host: string, port: number, opts: SinkOptions = {}): Promise<SmtpSink> {
  return startSmtpSink({ ...opts, host, port });
}

export interface TestPki {
  readonly dir: string;
  readonly caCert: Buffer;
  readonly caFile: string;
  readonly key: Buffer;
  readonly cert: Buffer;
  cleanup(): Promise<void>;
}

/** A throw-away CA and a server certificate for `names` (DNS SANs) plus IP 127.0.0.1, via openssl. */
export async function makeTestPki(names: readonly string[]): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'mailyard-pki-'));
  const p = (f: string) => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=Mailyard Test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/CN=${names[0] ?? 'localhost'}`]);
  const san = [...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
  await import('node:fs/promises').then((fs) => fs.writeFile(p('ext.cnf'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`));
  await run('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('ext.cnf')]);
  return {
    dir,
    caCert: await readFile(p('ca.pem')),
    caFile: p('ca.pem'),
    key: await readFile(p('server.key')),
    cert: await readFile(p('server.pem')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
