/**
 * One outbound SMTP session over nodemailer's SMTPConnection: connect to one address, EHLO,
 * STARTTLS per the connector's TLS policy, AUTH for smart hosts, then any number of transactions.
 * Promise-based, and every failure is returned as a DeliveryFailure value for classify.ts.
 *
 * Cost per message: with PIPELINING nodemailer writes MAIL FROM, every RCPT TO and DATA in one
 * batch (RFC 2920) and reads the replies in order; a message prepared in memory
 * (`Transaction.data`) goes out in a single socket write, "." line included. After a completed
 * transaction (2xx to the data) the next one starts without RSET (RFC 5321 4.1.1.5 needs none);
 * `needsReset` tells the caller when an aborted transaction has to be reset first.
 *
 * Promises:
 * - a credential is never sent unless the policy allows it (BasicAuthRequireTLS: only over TLS);
 * - DSN parameters are sent per recipient (NOTIFY, ORCPT) and per message (RET, ENVID) only when
 *   the peer offers DSN; SMTPUTF8 is declared when the message needs it and the peer offers it;
 * - the message bytes are dot-stuffed exactly once and every line ends in CRLF (DataStream for a
 *   stream, the caller's `encodeDataChunks` for prepared bytes, which are written as they are);
 * - a transaction that failed before the peer said anything about it (or said 421 to MAIL) on a
 *   session that had been used before is reported `staleSession`: no message data went out, so
 *   the caller can try again on another connection without any risk of a duplicate;
 * - per-recipient replies are reported as the peer gave them; a recipient counts as accepted only
 *   when both its RCPT and the final reply to the data were 2xx;
 * - with a protocol log, every line in and out is logged as Exchange does ("+", "-", ">", "<",
 *   "*"), AUTH payloads and 334 challenges redacted.
 *
 * nodemailer internals used (pinned by package.json): `_sendCommand` (overridden to add
 * per-recipient DSN parameters and to log commands), `_createSendStream` (overridden to write
 * prepared bytes straight to the socket), `_actionMAIL` (wrapped to see the MAIL reply),
 * `_actionSMTPStream`, `_responseActions`, `_envelope` (per-recipient replies),
 * `_supportedExtensions`, `_ehloLines`, `_maxAllowedSize`, `_socket`.
 */
import type { Socket } from 'node:net';
import type { TLSSocket, PeerCertificate, ConnectionOptions } from 'node:tls';
import type { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Logger } from 'pino';
import type { Recipient, TlsInfo } from '../../model/envelope.js';
import { newSessionId } from '../../model/ids.js';
import { formatEndpoint } from '../../model/ip-range.js';
import type { ProtocolEventKind, ProtocolLogSink } from '../../model/protocol.js';
import type { DeliveryFailure, SmtpStage } from '../classify.js';
import { asXtext } from './message-stream.js';
import { certificateMatchesDomain, certificateNames, type TlsPolicy } from './tls-policy.js';

export interface SessionTarget {
  /** Host name for SNI and logs (equal to ip for IP smart hosts and literals). */
  readonly host: string;
  readonly ip: string;
  readonly port: number;
}

export interface SessionOptions {
  readonly connectorName: string;
  readonly fqdn: string;
  readonly localAddress?: string;
  readonly tls: TlsPolicy;
  /** Trust store, client certificate, minimum version. */
  readonly tlsOptions?: { readonly ca?: Buffer; readonly key?: Buffer; readonly cert?: Buffer; readonly minVersion?: ConnectionOptions['minVersion'] };
  readonly auth?: { readonly user: string; readonly pass: string; readonly requireTls: boolean };
  /** Protocol log: only when the connector's protocolLoggingLevel is Verbose. */
  readonly protocolLog?: ProtocolLogSink;
  readonly timeouts: { readonly connect: number; readonly greeting: number; readonly socket: number };
  readonly logger: Logger;
  /** Send HELO instead of EHLO (Send connector forceHELO). */
  readonly forceHelo?: boolean;
}

/** Why a session could not be opened. `retryPlaintext`: a TLS handshake failed under opportunistic TLS. */
export interface OpenFailure {
  readonly failure: DeliveryFailure;
  readonly stage: SmtpStage;
  readonly tlsFailure: boolean;
  readonly authFailure: boolean;
  readonly retryPlaintext: boolean;
}

export interface Transaction {
  readonly mailFrom: string | null;
  readonly recipients: readonly Recipient[];
  readonly size: number;
  readonly body8bit: boolean;
  readonly smtputf8: boolean;
  readonly ret?: 'FULL' | 'HDRS';
  readonly envid?: string;
  /** The message as a stream (nodemailer normalises line ends and dot-stuffs it), or ... */
  readonly message?: Readable;
  /** ... the exact DATA bytes in order, already normalised and dot-stuffed, ending in "<CRLF>.<CRLF>". */
  readonly data?: readonly Buffer[];
  /** For the "sending message" protocol log line. */
  readonly recordId: string;
  readonly internetMessageId?: string;
}

export interface TransactionResult {
  /** Recipients the peer took, with the final reply to the data. */
  readonly accepted: ReadonlyMap<string, string>;
  /** Recipients refused at RCPT TO, with the peer's reply. */
  readonly rejected: ReadonlyMap<string, string>;
  /** Recipients in neither map: what happened to them. */
  readonly failure?: { readonly failure: DeliveryFailure; readonly connectionLost: boolean };
  /**
   * The connection was found dead (or closing with 421 at MAIL) before the peer answered anything
   * of a transaction on a reused session; no message data was sent. Safe to retry elsewhere.
   */
  readonly staleSession?: boolean;
}

interface NodemailerError extends Error {
  code?: string;
  originalCode?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  recipient?: string;
}

/** What nodemailer's send() does with the object `_createSendStream` returns for a Buffer message. */
interface DataSink {
  outByteCount: number;
  write(chunks: readonly Buffer[]): boolean;
  end(): void;
}

type ReplyCallback = (err: Error | null, info?: unknown) => void;

interface Internals {
  _sendCommand(str: string, logStr?: string): void;
  _createSendStream(callback: ReplyCallback): unknown;
  _actionMAIL(str: string, callback: ReplyCallback): void;
  _actionSMTPStream(str: string, callback: ReplyCallback): void;
  _responseActions: ((str: string) => void)[];
  _envelope?: false | { accepted?: string[]; rejectedErrors?: NodemailerError[] };
  _supportedExtensions?: string[];
  _ehloLines?: string[];
  _maxAllowedSize?: number;
  _socket?: Socket | TLSSocket | false | null;
  upgrading?: boolean;
  secure: boolean;
  destroyed: boolean;
}

const base = SMTPConnection.prototype as unknown as Internals;
const baseSendCommand = base._sendCommand;
const baseCreateSendStream = base._createSendStream;
const baseActionMail = base._actionMAIL;
for (const [name, fn] of Object.entries({ _sendCommand: baseSendCommand, _createSendStream: baseCreateSendStream, _actionMAIL: baseActionMail, _actionSMTPStream: base._actionSMTPStream })) {
  if (typeof fn !== 'function') throw new Error(`nodemailer's SMTPConnection lacks ${name}: the pinned version changed`);
}

/**
 * SMTPConnection with a hook on every command written (rewrite + log), the MAIL reply noted, and
 * prepared DATA bytes written straight to the socket.
 */
class TappedConnection extends SMTPConnection {
  rewrite?: (line: string) => string;
  tap?: (line: string) => void;
  /** Send connector forceHELO: the greeting is answered with HELO (no ESMTP extensions follow). */
  forceHelo = false;
  /** The current message is given as prepared bytes: write them as they are. */
  directData = false;
  /** The reply to the current transaction's MAIL FROM, once it has come. */
  mailReply: string | undefined;
  /** Message data of the current transaction has started to go out. */
  dataStarted = false;

  _sendCommand(str: string, logStr?: string): void {
    let line = this.rewrite && typeof str === 'string' ? this.rewrite(str) : str;
    if (this.forceHelo && typeof line === 'string' && line.startsWith('EHLO ')) line = `HELO ${line.slice(5)}`;
    this.tap?.(line);
    baseSendCommand.call(this, line, logStr);
  }

  _actionMAIL(str: string, callback: ReplyCallback): void {
    this.mailReply = str;
    baseActionMail.call(this, str, callback);
  }

  _createSendStream(callback: ReplyCallback): unknown {
    this.dataStarted = true;
    if (!this.directData) return baseCreateSendStream.call(this, callback);
    // send() calls write(message) once with Transaction.data (the chunks) and end(), then reads
    // outByteCount with the final reply. The chunks go out corked: one writev.
    const self = this as unknown as Internals;
    self._responseActions.push((str) => self._actionSMTPStream(str, callback));
    const socket = self._socket;
    const sink: DataSink = {
      outByteCount: 0,
      write(chunks: readonly Buffer[]): boolean {
        for (const c of chunks) sink.outByteCount += c.length;
        if (!socket || socket.destroyed) return false;
        if (chunks.length === 1) return socket.write(chunks[0]!);
        socket.cork();
        let room = true;
        for (const c of chunks) room = socket.write(c);
        socket.uncork();
        return room;
      },
      end(): void {},
    };
    return sink;
  }
}

function commandStage(command: string | undefined): SmtpStage {
  const c = (command ?? '').toUpperCase();
  if (c === 'CONN') return 'connect';
  if (c.startsWith('EHLO') || c.startsWith('HELO') || c.startsWith('LHLO')) return 'ehlo';
  if (c.startsWith('STARTTLS')) return 'starttls';
  if (c.startsWith('AUTH')) return 'auth';
  if (c.startsWith('MAIL')) return 'mail';
  if (c.startsWith('RCPT')) return 'rcpt';
  if (c.startsWith('DATA')) return 'data';
  if (c.startsWith('RSET')) return 'rset';
  return 'unknown';
}

/** Turns a nodemailer error into a DeliveryFailure. */
function failureOf(err: NodemailerError, stage: SmtpStage): DeliveryFailure {
  if (err.response && /^\d{3}/.test(err.response)) return { kind: 'reply', reply: err.response, stage };
  const code = err.originalCode ?? err.code ?? 'EUNKNOWN';
  if (err.code === 'ETLS') return { kind: 'tls', code, message: err.message };
  return { kind: 'socket', code, message: err.message, stage };
}

/** Live state of one session, shared by the protocol log tap. */
class ProtocolTap {
  private sequence = 0;
  private local = '';
  readonly sessionId = newSessionId();
  authenticating = false;
  private authLines = 0;

  constructor(
    private readonly sink: ProtocolLogSink | undefined,
    private readonly connectorId: string,
    private readonly remote: string,
  ) {}

  setLocal(address: string | undefined, port: number | undefined): void {
    if (address && port) this.local = formatEndpoint(address.replace(/^::ffff:/, ''), port);
  }

  get logging(): boolean {
    return this.sink !== undefined;
  }

  /** A line not worth building when nobody logs it: only the sequence moves on. */
  skip(): void {
    this.sequence++;
  }

  write(event: ProtocolEventKind, data: string, context?: string): void {
    const sequence = this.sequence++;
    if (!this.sink) return;
    this.sink.write('HubSend', {
      timestamp: new Date(),
      connectorId: this.connectorId,
      sessionId: this.sessionId,
      sequence,
      localEndpoint: this.local,
      remoteEndpoint: this.remote,
      event,
      data,
      ...(context !== undefined ? { context } : {}),
    });
  }

  /** Commands we send; AUTH payloads are never logged (Exchange leaves a gap in the sequence). */
  command(line: string): void {
    if (this.authenticating) {
      this.authLines++;
      if (this.authLines === 1 && /^AUTH\s/i.test(line)) {
        this.write('>', line.split(/\s+/).slice(0, 2).join(' '));
      } else {
        this.sequence++;
      }
      return;
    }
    this.write('>', line);
  }

  reply(text: string): void {
    // One log line per reply: continuation lines lose their "250-" prefix (Exchange's layout).
    const joined = text
      .split(/\r?\n/)
      .map((line, i) => (i === 0 ? line : line.replace(/^\d{3}[ -]/, '')))
      .join(' ');
    if (this.authenticating && /^334[ -]?/.test(joined)) this.write('<', '334 <authentication response>');
    else this.write('<', joined);
  }

  startAuth(): void {
    this.authenticating = true;
    this.authLines = 0;
  }
}

/** The bunyan-style logger nodemailer writes to, routed into the protocol log. */
function tapLogger(tap: ProtocolTap, onUpgrade: () => void): Record<string, (...args: unknown[]) => void> {
  const handle = (entry: unknown, message: unknown) => {
    const e = (entry ?? {}) as { tnx?: string; localAddress?: string; localPort?: number; remoteAddress?: string };
    if (e.tnx === 'server' && typeof message === 'string') tap.reply(message);
    else if (e.tnx === 'network' && e.remoteAddress !== undefined) {
      tap.setLocal(e.localAddress, e.localPort);
      tap.write('+', '');
    } else if (e.tnx === 'smtp' && message === 'Connection upgraded with STARTTLS') onUpgrade();
  };
  const noop = () => {};
  return { trace: noop, debug: handle, info: handle, warn: noop, error: noop, fatal: noop };
}

function tlsInfoOf(socket: unknown): TlsInfo | undefined {
  const s = socket as TLSSocket | undefined;
  if (!s || typeof s.getProtocol !== 'function') return undefined;
  const cipher = s.getCipher?.();
  let subject: string | undefined;
  try {
    const cert: PeerCertificate | undefined = s.getPeerCertificate?.();
    const cn = cert?.subject?.CN;
    subject = Array.isArray(cn) ? cn.join(',') : cn;
  } catch {
    subject = undefined;
  }
  return {
    protocol: s.getProtocol() ?? 'unknown',
    cipher: cipher?.standardName ?? cipher?.name ?? 'unknown',
    authorized: s.authorized,
    ...(subject ? { peerCertificateSubject: `CN=${subject}` } : {}),
  };
}

export class SmtpSession {
  /** Messages sent (successfully or not) over this session. */
  messages = 0;
  /** The last transaction did not complete (no 2xx to the data): RSET before the next MAIL. */
  needsReset = false;
  private ended = false;
  private extensionSet?: ReadonlySet<string>;
  /** Resolves when the connection has ended (for whatever reason). */
  readonly whenEnded: Promise<void>;

  private constructor(
    private readonly conn: TappedConnection,
    private readonly tap: ProtocolTap,
    readonly target: SessionTarget,
    readonly tls: TlsInfo | undefined,
    private readonly logger: Logger,
  ) {
    let ended!: () => void;
    this.whenEnded = new Promise<void>((resolve) => {
      ended = resolve;
    });
    conn.on('end', () => {
      this.ended = true;
      ended();
      this.endListener?.();
    });
  }

  get sessionId(): string {
    return this.tap.sessionId;
  }

  get alive(): boolean {
    const c = this.conn as unknown as Internals;
    const socket = c._socket;
    return !this.ended && !c.destroyed && !!socket && !socket.destroyed && socket.writable;
  }

  private internals(): Internals {
    return this.conn as unknown as Internals;
  }

  /** EHLO keywords the peer offered (upper case, without parameters). */
  get extensions(): ReadonlySet<string> {
    // Fixed once the session is open (after STARTTLS and the EHLO that follows it).
    if (this.extensionSet) return this.extensionSet;
    const i = this.internals();
    const set = new Set<string>((i._supportedExtensions ?? []).map((e) => e.toUpperCase()));
    for (const line of i._ehloLines ?? []) set.add(line.split(/[\s=]/)[0]!.toUpperCase());
    this.extensionSet = set;
    return set;
  }

  /** Opens a session to one address. Resolves with the session or an OpenFailure. */
  static open(target: SessionTarget, opts: SessionOptions, signal?: AbortSignal): Promise<SmtpSession | OpenFailure> {
    const remote = formatEndpoint(target.ip, target.port);
    const tap = new ProtocolTap(opts.protocolLog, opts.connectorName, remote);
    const policy = opts.tls;
    const isIp = target.host === target.ip;
    const tlsOptions: ConnectionOptions = {
      rejectUnauthorized: policy.verify !== 'none',
      ...(opts.tlsOptions?.minVersion ? { minVersion: opts.tlsOptions.minVersion } : {}),
      ...(opts.tlsOptions?.ca && policy.verify !== 'none' ? { ca: opts.tlsOptions.ca } : {}),
      ...(opts.tlsOptions?.key && opts.tlsOptions.cert ? { key: opts.tlsOptions.key, cert: opts.tlsOptions.cert } : {}),
      ...(isIp ? {} : { servername: target.host }),
    };
    if (policy.verify === 'chain') tlsOptions.checkServerIdentity = () => undefined;
    if (policy.verify === 'domain') {
      const domain = policy.domain ?? '';
      tlsOptions.checkServerIdentity = (_host, cert) => {
        const names = certificateNames(cert.subjectaltname, Array.isArray(cert.subject?.CN) ? cert.subject.CN[0] : cert.subject?.CN);
        if (certificateMatchesDomain(names, domain)) return undefined;
        const err = new Error(`certificate names [${names.join(', ')}] do not match ${domain}`) as Error & { code: string };
        err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
        return err;
      };
    }

    let conn: TappedConnection | undefined;
    let tlsStarted = false;
    const onUpgrade = () => {
      const info = tlsInfoOf(conn && (conn as unknown as Internals)._socket);
      if (info) {
        const verified = policy.verify === 'none' ? 'not validated' : 'validated';
        tap.write('*', '', `TLS protocol ${info.protocol} negotiation succeeded using cipher ${info.cipher}; remote certificate ${info.peerCertificateSubject ?? '(none)'} ${verified}`);
      }
    };
    conn = new TappedConnection({
      host: target.ip,
      port: target.port,
      secure: false,
      name: opts.fqdn,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      ...(isIp ? {} : { servername: target.host }),
      ignoreTLS: policy.mode === 'plaintext',
      requireTLS: policy.mode === 'required',
      opportunisticTLS: policy.mode === 'opportunistic',
      tls: tlsOptions,
      connectionTimeout: opts.timeouts.connect,
      greetingTimeout: opts.timeouts.greeting,
      socketTimeout: opts.timeouts.socket,
      socketCloseTimeout: 2000,
      // nodemailer's log calls cost an object copy each: only when there is a protocol log to feed.
      ...(opts.protocolLog ? { logger: tapLogger(tap, onUpgrade) as never, transactionLog: true } : { logger: false }),
    });
    const c = conn;
    c.forceHelo = opts.forceHelo === true;
    c.tap = (line) => {
      if (/^STARTTLS$/i.test(line)) tlsStarted = true;
      tap.command(line);
    };
    // nodemailer reports connection-phase failures (refused, timeouts, TLS) only as 'error'
    // events; later ones also reach the send callback. Without a listener the emit would throw.
    let opening: ((err: NodemailerError) => void) | undefined;
    c.on('error', (err: NodemailerError) => opening?.(err));
    let closedLocally = false;
    c.on('end', () => tap.write('-', '', closedLocally ? 'Local' : 'Remote'));

    tap.write('*', '', 'attempting to connect');

    return new Promise((resolve) => {
      let settled = false;
      const fail = (err: NodemailerError, extra: Partial<OpenFailure> = {}) => {
        if (settled) return;
        settled = true;
        opening = undefined;
        closedLocally = true;
        c.close();
        signal?.removeEventListener('abort', onAbort);
        const stage = commandStage(err.command);
        const duringTls = tlsStarted && !c.secure;
        const tlsFailure = duringTls || err.code === 'ETLS';
        const failure: DeliveryFailure = tlsFailure ? { kind: 'tls', code: err.originalCode ?? err.code, message: err.message } : failureOf(err, stage);
        resolve({
          failure,
          stage,
          tlsFailure,
          authFailure: false,
          // The handshake (not the STARTTLS command) failed: opportunistic TLS may retry in plaintext.
          retryPlaintext: tlsFailure && policy.mode === 'opportunistic' && !err.response,
          ...extra,
        });
      };
      const onAbort = () => {
        const err: NodemailerError = new Error('delivery aborted');
        err.code = 'ECONNABORTED';
        fail(err);
      };
      opening = (err) => fail(err);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });

      c.connect((connectErr) => {
        if (connectErr) return fail(connectErr as NodemailerError);
        if (policy.mode === 'required' && !c.secure) {
          const err: NodemailerError = new Error('TLS is required but was not established');
          err.code = 'ETLS';
          return fail(err);
        }
        const done = () => {
          if (settled) return;
          settled = true;
          opening = undefined;
          signal?.removeEventListener('abort', onAbort);
          const session = new SmtpSession(c, tap, target, c.secure ? tlsInfoOf((c as unknown as Internals)._socket) : undefined, opts.logger);
          session.onClose = () => {
            closedLocally = true;
          };
          resolve(session);
        };
        const auth = opts.auth;
        if (!auth) return done();
        if (auth.requireTls && !c.secure) {
          const err: NodemailerError = new Error('not sending credentials: TLS was not established');
          err.code = 'ETLS';
          return fail(err);
        }
        tap.startAuth();
        c.login({ user: auth.user, pass: auth.pass }, (authErr) => {
          tap.authenticating = false;
          if (authErr) {
            const e = authErr as NodemailerError;
            const reply = e.response && /^\d{3}/.test(e.response) ? e.response : undefined;
            const failure: DeliveryFailure = reply
              ? { kind: 'reply', reply: `451 4.7.0 Authentication to the smart host failed: ${reply.replace(/\s+/g, ' ')}`, stage: 'auth' }
              : failureOf(e, 'auth');
            return fail(e, { failure, authFailure: true, stage: 'auth' });
          }
          done();
        });
      });
    });
  }

  private onClose?: () => void;

  /** RSET (after an aborted transaction, see needsReset). Resolves false when the session is unusable. */
  reset(): Promise<boolean> {
    return new Promise((resolve) => {
      if (!this.alive) return resolve(false);
      this.conn.reset((err) => {
        if (!err) this.needsReset = false;
        resolve(!err);
      });
    });
  }

  /** Runs one mail transaction. Never rejects. */
  send(tx: Transaction, signal?: AbortSignal): Promise<TransactionResult> {
    const ext = this.extensions;
    const dsn = ext.has('DSN');
    const rcptParams = new Map<string, string[]>();
    for (const r of tx.recipients) {
      const params: string[] = [];
      if (dsn && r.notify !== undefined) params.push(`NOTIFY=${r.notify.length === 0 ? 'NEVER' : r.notify.join(',')}`);
      if (dsn && r.orcpt) params.push(`ORCPT=${asXtext(r.orcpt)}`);
      rcptParams.set(r.address, params);
    }
    const mailParams: string[] = [];
    if (tx.smtputf8 && ext.has('SMTPUTF8')) mailParams.push('SMTPUTF8');
    if (dsn && tx.ret) mailParams.push(`RET=${tx.ret}`);
    if (dsn && tx.envid) mailParams.push(`ENVID=${asXtext(tx.envid)}`);

    // nodemailer writes "RCPT TO:<address>" with no parameters of its own (no envelope.dsn given):
    // nothing to rewrite unless there are parameters to add.
    let anyRcptParams = false;
    for (const params of rcptParams.values()) if (params.length > 0) anyRcptParams = true;
    this.conn.rewrite = mailParams.length === 0 && !anyRcptParams ? undefined : (line) => {
      if (/^MAIL FROM:/i.test(line)) {
        const extra = mailParams.filter((p) => !line.toUpperCase().includes(` ${p.split('=')[0]!.toUpperCase()}`));
        return extra.length ? `${line} ${extra.join(' ')}` : line;
      }
      const m = /^RCPT TO:<([^>]*)>/i.exec(line);
      if (m) {
        const params = rcptParams.get(m[1]!) ?? [];
        return params.length ? `RCPT TO:<${m[1]}> ${params.join(' ')}` : `RCPT TO:<${m[1]}>`;
      }
      return line;
    };
    if (this.tap.logging) this.tap.write('*', '', `sending message with RecordId ${tx.recordId} and InternetMessageId ${tx.internetMessageId ?? '<none>'}`);
    else this.tap.skip();
    const reused = this.messages > 0;
    this.messages++;
    this.needsReset = true;
    const conn = this.conn;
    conn.mailReply = undefined;
    conn.dataStarted = false;
    conn.directData = tx.data !== undefined;
    // nodemailer hands a non-stream message unchanged to the sink of _createSendStream (above),
    // which takes the chunks of Transaction.data.
    const message = (tx.data as unknown as Buffer | undefined) ?? tx.message;
    if (!message) throw new Error('Transaction without message data');
    if (!this.alive) {
      // Found dead before anything was written (the peer hung up while the session was idle).
      tx.message?.destroy();
      conn.rewrite = undefined;
      conn.directData = false;
      const failure: DeliveryFailure = { kind: 'socket', code: 'ECONNECTION', message: 'connection closed', stage: 'mail' };
      return Promise.resolve({ accepted: new Map(), rejected: new Map(), failure: { failure, connectionLost: true }, ...(reused ? { staleSession: true } : {}) });
    }

    return new Promise<TransactionResult>((outerResolve) => {
      let settled = false;
      const resolve = (r: TransactionResult) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        this.conn.rewrite = undefined;
        this.conn.directData = false;
        if (!r.failure) this.needsReset = false;
        outerResolve(r);
      };
      // nodemailer's close() forgets the pending send without calling back: settle here.
      const onAbort = () => {
        resolve({ accepted: new Map(), rejected: new Map(), failure: { failure: { kind: 'socket', code: 'ECONNABORTED', message: 'delivery aborted', stage: 'unknown' }, connectionLost: true } });
        this.close();
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.conn.send(
        { from: tx.mailFrom ?? '', to: tx.recipients.map((r) => r.address), size: tx.size, use8BitMime: tx.body8bit },
        message,
        (err, info) => {
          const envelope = this.internals()._envelope;
          const rejected = new Map<string, string>();
          for (const e of (envelope ? envelope.rejectedErrors : undefined) ?? info?.rejectedErrors ?? []) {
            const ne = e as NodemailerError;
            if (ne.recipient && ne.response) rejected.set(ne.recipient, ne.response);
          }
          if (!err && info) {
            const accepted = new Map<string, string>();
            for (const a of info.accepted) accepted.set(a, info.response);
            return resolve({ accepted, rejected });
          }
          const e = (err ?? new Error('send failed')) as NodemailerError;
          if (e.code === 'EMESSAGE' && e.command === 'MAIL FROM' && !e.response) {
            // nodemailer refuses locally when SIZE says the peer will not take the message.
            const max = this.internals()._maxAllowedSize;
            return resolve({ accepted: new Map(), rejected, failure: { failure: { kind: 'reply', reply: `552 5.3.4 Message size exceeds the remote server's limit${max ? ` of ${max} bytes` : ''}`, stage: 'mail' }, connectionLost: false } });
          }
          const stage: SmtpStage = e.code === 'EMESSAGE' && e.command === 'DATA' ? 'message' : commandStage(e.command);
          // With PIPELINING the RCPTs after a refused MAIL FROM get "503 need MAIL": meaningless.
          if (stage === 'mail') rejected.clear();
          const lost = !this.alive || e.code === 'ECONNECTION' || e.code === 'ETIMEDOUT' || e.code === 'ESOCKET' || /^421/.test(e.response ?? '');
          // A pooled session the peer had given up on: no reply to MAIL (or a 421), no data sent.
          const stale = reused && lost && !conn.dataStarted && (conn.mailReply === undefined || /^421/.test(conn.mailReply));
          resolve({ accepted: new Map(), rejected, failure: { failure: failureOf(e, stage), connectionLost: lost }, ...(stale ? { staleSession: true } : {}) });
        },
      );
    });
  }

  /** Polite end: QUIT, then close. */
  quit(): void {
    this.onClose?.();
    if (this.alive) {
      try {
        this.conn.quit();
      } catch {
        this.conn.close();
      }
      // Do not wait for ever for the 221.
      setTimeout(() => this.conn.close(), 2000).unref();
    } else {
      this.conn.close();
    }
  }

  close(): void {
    this.onClose?.();
    this.conn.close();
  }

  private endListener?: () => void;

  /** Sets the (single) listener for the end of the session, e.g. the pool forgetting it. */
  onEnd(listener: () => void): void {
    this.endListener = listener;
  }

  debug(message: string): void {
    this.logger.debug({ host: this.target.host, ip: this.target.ip, session: this.sessionId }, message);
  }
}
