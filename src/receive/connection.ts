/**
 * smtp-server, adapted to Exchange's Receive connector behaviour by subclassing (no patches to
 * the library):
 *
 * - Greeting without delay. smtp-server's SMTPConnection.init() waits a fixed 100 ms before every
 *   greeting as an early-talker check, which caps one-message sessions. MailyardConnection.init()
 *   does the same set-up minus that wait; a connector's `greetingDelay` brings the check back on
 *   purpose, and a client that talks first then gets `554 5.5.0` and is disconnected.
 * - Replies: every reply goes through send(), which takes Mailyard's catalogue texts (already
 *   carrying an enhanced code) as they are, rewrites the library's own texts into Exchange's
 *   wording, writes the `>` protocol log line, counts protocol errors (500-504) and applies the
 *   tarpit (anonymous 5xx replies, failed AUTH) while keeping replies in order.
 * - Commands: _onCommand() logs the `<` line (AUTH payloads replaced), refuses bare LF, bare CR
 *   and NUL in command lines, and refuses every command once the service is stopping.
 * - EHLO: the extension list is built from the connector's settings and the TLS/AUTH state.
 * - AUTH: offered only where the connector allows it (538 before TLS when TLS is required).
 * Nothing pipelined after STARTTLS is executed: smtp-server retires the plaintext parser.
 * - DATA: chunks without a line starting with a dot skip the library's byte-by-byte scan
 *   (feedDataFast); every other chunk goes through the library unchanged.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import type { ReceiveConnector } from '../config/defaults.js';
import type { SmtpReply } from '../model/reply.js';
import { REPLIES } from '../policy/replies.js';
import type { SessionContext } from './session.js';

/** Per-connector settings the connection needs, fixed when the connector's server is built. */
export interface ConnectionSettings {
  readonly connector: ReceiveConnector;
  readonly greetingDelayMs: number;
  /** Greeting text after "220 ". */
  readonly banner: () => string;
  readonly tlsOffered: boolean;
  readonly authOffered: boolean;
  readonly authBeforeTls: boolean;
  readonly isLockedOut: (ctx: SessionContext) => boolean;
}

/** Library texts and what Exchange says instead (code may change; the library closes on 421 only). */
const REWRITES: ReadonlyArray<{ code: number; text: RegExp | string; reply: SmtpReply; close?: boolean }> = [
  { code: 500, text: 'Error: command not recognized', reply: REPLIES.unrecognizedCommand },
  { code: 503, text: /^Error: send (HELO\/EHLO|LHLO) first$/, reply: REPLIES.sendHelloFirst },
  { code: 503, text: 'Error: need MAIL command', reply: REPLIES.needMail },
  { code: 503, text: 'Error: need RCPT command', reply: REPLIES.needRcpt },
  { code: 503, text: 'Error: nested MAIL command', reply: REPLIES.senderAlreadySpecified },
  { code: 501, text: 'Error: Bad sender address syntax', reply: REPLIES.invalidSender },
  { code: 501, text: 'Error: Bad recipient address syntax', reply: REPLIES.invalidRecipient },
  { code: 501, text: /^Error: [Ss]yntax: HELO hostname$|^Error: Bad hostname syntax$/, reply: REPLIES.invalidDomainName },
  { code: 221, text: 'Bye', reply: REPLIES.closing },
  { code: 250, text: 'Flushed', reply: REPLIES.resetting },
  { code: 250, text: 'OK', reply: REPLIES.ok },
  { code: 252, text: /^Try to send something/, reply: REPLIES.cannotVrfy },
  { code: 220, text: 'Ready to start TLS', reply: REPLIES.startTls },
  { code: 503, text: 'Error: TLS already active', reply: REPLIES.tlsAlreadyActive },
  { code: 501, text: 'Error: syntax: STARTTLS', reply: REPLIES.syntaxError },
  { code: 354, text: /^End data with/, reply: REPLIES.startData },
  { code: 235, text: 'Authentication successful', reply: REPLIES.authOk },
  { code: 501, text: 'Authentication aborted', reply: REPLIES.authCancelled },
  { code: 501, text: /^Error: (invalid userdata|missing username)$/, reply: REPLIES.authInvalidResponse },
  { code: 421, text: 'Timeout - closing connection', reply: REPLIES.inactivityTimeout, close: true },
  { code: 421, text: 'Error: Command line too long', reply: REPLIES.lineTooLong, close: true },
  { code: 421, text: /^Error: too many unrecognized commands$/, reply: REPLIES.tooManyErrors },
  { code: 421, text: /You talk too soon$/, reply: REPLIES.earlyTalker, close: true },
  { code: 421, text: 'Server shutting down', reply: REPLIES.shuttingDown },
];

/** The rewrites by reply code, so a reply is compared only with the rewrites for its own code. */
const REWRITES_BY_CODE = new Map<number, Array<(typeof REWRITES)[number]>>();
for (const r of REWRITES) {
  const list = REWRITES_BY_CODE.get(r.code);
  if (list) list.push(r);
  else REWRITES_BY_CODE.set(r.code, [r]);
}

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
const BARE_LF_MARK = 0x01; // replaces a bare LF in command input, see _createParser

type Parser = ReturnType<SMTPConnection['_createParser']>;
const LF_DOT = Buffer.from('\n.');
/** How many trailing bytes smtp-server's data parser holds back to find a terminator split across reads. */
const HELD_BACK = 4;

/**
 * DATA fast path. smtp-server's _feedDataStream looks at every byte for a line that starts with a
 * dot (an escape or the terminator). Up to the first "LF ." of a chunk neither can happen, and
 * what the library would do with those bytes is fixed: pass them on, holding back the last few in
 * case a terminator is split across reads. That part is done here with one Buffer.indexOf; the
 * rest of the chunk, from its first "LF ." on, goes to the library's own code with exactly the
 * held-back bytes it would have had. The start of the data when it begins with a dot, tiny chunks,
 * and a "LF ." across the previous read's held-back bytes go to the library whole.
 */
function feedDataFast(this: Parser, chunk: Buffer, done: (err?: Error | null) => void): void {
  const held = this._lastBytes && this._lastBytes.length ? this._lastBytes : undefined;
  const dot = chunk.length <= HELD_BACK ? 0 : chunk.indexOf(LF_DOT);
  if (
    (this._atDataStart && chunk[0] === 0x2e) ||
    (dot !== -1 && dot <= HELD_BACK) ||
    (held !== undefined && Buffer.concat([held, chunk.subarray(0, 1)]).indexOf(LF_DOT) !== -1)
  ) {
    this._lastBytes = false;
    SMTPStream.prototype._feedDataStream.call(this, held ? Buffer.concat([held, chunk], held.length + chunk.length) : chunk, done);
    return;
  }
  // No dot starts a line before `end`: pass on the held-back bytes and the chunk up to there
  // without joining them (a copy per read), and hold back the last bytes as the library would.
  const stream = this._dataStream;
  const end = dot === -1 ? chunk.length : dot;
  const emit = chunk.subarray(0, end - HELD_BACK);
  this._lastBytes = chunk.subarray(end - HELD_BACK, end);
  this._countDataBytes((held?.length ?? 0) + emit.length);
  const writable = stream !== undefined && stream !== null && stream.writable;
  if (writable && held) stream.write(held);
  const flowing = writable ? stream.write(emit) : true;
  // The library takes the rest from the first "LF ." on (and waits for 'drain' if need be).
  if (dot !== -1) return SMTPStream.prototype._feedDataStream.call(this, chunk.subarray(dot), done);
  if (!writable || flowing || stream.destroyed) return done();
  const resume = () => {
    stream.removeListener('drain', resume);
    stream.removeListener('close', resume);
    done();
  };
  stream.once('drain', resume);
  stream.once('close', resume);
}

export class MailyardSmtpServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    readonly settings: ConnectionSettings,
  ) {
    super(options);
  }

  /** Starts a session on an accepted (and, for implicit TLS, already secured) socket. */
  connectSession(socket: net.Socket | tls.TLSSocket, ctx: SessionContext, onClosed: (c: MailyardConnection) => void): MailyardConnection {
    const connection = new MailyardConnection(this, socket, ctx, onClosed);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data) => this._onClientConnect(data));
    connection.init();
    return connection;
  }
}

export class MailyardConnection extends SMTPConnection {
  readonly ctx: SessionContext;
  readonly settings: ConnectionSettings;
  draining = false;
  #closedByUs = false;
  #holding = false;
  #held: Array<() => void> = [];
  #sessionTimer: NodeJS.Timeout | undefined;
  #greetTimer: NodeJS.Timeout | undefined;
  #notifyClosed: ((c: MailyardConnection) => void) | undefined;

  constructor(server: MailyardSmtpServer, socket: net.Socket | tls.TLSSocket, ctx: SessionContext, onClosed: (c: MailyardConnection) => void) {
    super(server, socket, {
      id: ctx.id,
      localAddress: ctx.local.address,
      localPort: ctx.local.port,
      remoteAddress: ctx.remote.address,
      remotePort: ctx.remote.port,
    });
    this.ctx = ctx;
    this.settings = server.settings;
    this.#notifyClosed = onClosed;
    sessionContexts.set(this.session, ctx);
    ctx.sendReply = (r) => this.sendReply(r);
  }

  /** Like SMTPConnection.init() without the fixed 100 ms early-talker pause. */
  override init(): void {
    this.ctx.log('+', '');
    const limit = this.settings.connector.connectionTimeout;
    if (Number.isFinite(limit) && limit > 0) {
      this.#sessionTimer = setTimeout(() => this.sendReply(REPLIES.sessionTimeout), limit);
      this.#sessionTimer.unref();
    }
    this._setListeners(() => {
      if (this.settings.greetingDelayMs > 0) {
        this.#greetTimer = setTimeout(() => this.connectionReady(), this.settings.greetingDelayMs);
        this.#greetTimer.unref();
      } else {
        this.connectionReady();
      }
    });
  }

  override _sendGreeting(): void {
    this.send(220, this.settings.banner(), false);
  }

  /** Sends a catalogue reply (its enhanced code is kept or dropped per connector). */
  sendReply(r: SmtpReply): void {
    this.send(r.code, r.enhanced ? `${r.enhanced} ${r.text}` : r.text, false);
  }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    let c = code;
    let d = data;
    let ctxArg = context;
    let closeAfter = false;
    if (typeof d === 'string') {
      const text = d;
      const rw = REWRITES_BY_CODE.get(c)?.find((r) => (typeof r.text === 'string' ? r.text === text : r.text.test(text)));
      if (rw) {
        c = rw.reply.code;
        d = rw.reply.enhanced ? `${rw.reply.enhanced} ${rw.reply.text}` : rw.reply.text;
        closeAfter = !!rw.close;
      }
      if (ENHANCED.test(d)) {
        ctxArg = false;
        if (!this.settings.connector.enhancedStatusCodesEnabled) d = d.replace(ENHANCED, '');
      } else if (context === 'MAIL_FROM_OK' && c === 250) {
        d = `${REPLIES.senderOk.enhanced} ${REPLIES.senderOk.text}`;
        ctxArg = false;
      } else if (context === 'RCPT_TO_OK' && c === 250) {
        d = `${REPLIES.recipientOk.enhanced} ${REPLIES.recipientOk.text}`;
        ctxArg = false;
      }
    }
    const isProtocolError = c >= 500 && c <= 504;
    const delay = this.#tarpitFor(c);
    const write = () => {
      if (this.ctx.logging) this.#logReply(c, d, ctxArg);
      super.send(c, d, ctxArg);
      if (closeAfter && c !== 421) this.close();
    };
    if (this.#holding) this.#held.push(write);
    else if (delay > 0) {
      this.#holding = true;
      this.#held.push(write);
      setTimeout(() => this.#release(), delay).unref();
    } else write();

    if (isProtocolError && !this._closing) {
      this.ctx.protocolErrors++;
      const max = this.settings.connector.maxProtocolErrors;
      if (this.ctx.protocolErrors >= max) {
        this.ctx.log('*', '', `Too many protocol errors (${this.ctx.protocolErrors})`);
        this.sendReply(REPLIES.tooManyErrors);
      }
    }
  }

  #tarpitFor(code: number): number {
    const c = this.settings.connector;
    if (code === 535) return c.authTarpitInterval;
    // only anonymous sessions are tarpitted; authenticated users and proven peers never are
    if (code >= 500 && this.ctx.principal.kind === 'anonymous' && this._ready) return c.tarpitInterval;
    return 0;
  }

  #release(): void {
    this.#holding = false;
    const held = this.#held;
    this.#held = [];
    for (let i = 0; i < held.length; i++) {
      held[i]!();
      // a later reply may start a new tarpit; keep the rest behind it
      if (this.#holding) {
        this.#held.unshift(...held.slice(i + 1));
        return;
      }
    }
  }

  #logReply(code: number, data: string | string[] | null | undefined, context: string | false | undefined): void {
    if (code === 334) return this.ctx.log('>', '334 <authentication response>');
    const enh = this._getEnhancedStatusCode(code, context);
    const text = Array.isArray(data) ? data.join(' ') : (data ?? '');
    this.ctx.log('>', `${code}${enh ? ` ${enh}` : ''}${text ? ` ${text}` : ''}`);
  }

  override close(): void {
    if (this.#holding) {
      // let the held replies go out first
      this.#held.push(() => this.close());
      return;
    }
    if (!this._closing && !this._closed) this.#closedByUs = true;
    super.close();
  }

  override _onClose(): void {
    const first = !this._closed;
    clearTimeout(this.#sessionTimer);
    clearTimeout(this.#greetTimer);
    super._onClose();
    if (first) {
      this.ctx.log('-', '', this.#closedByUs ? 'Local' : 'Remote');
      sessionContexts.delete(this.session);
      const n = this.#notifyClosed;
      this.#notifyClosed = undefined;
      n?.(this);
    }
  }

  override _createParser(): ReturnType<SMTPConnection['_createParser']> {
    const parser = super._createParser();
    const write = parser._write.bind(parser);
    let lastWasCR = false;
    // Command lines must end in CRLF; a bare LF is marked so _onCommand can refuse the line.
    parser._write = (chunk, encoding, next) => {
      if (!parser._dataMode && chunk && chunk.length && chunk.includes(0x0a)) {
        let marked: Buffer | undefined;
        for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) {
          const prev = i > 0 ? chunk[i - 1] : lastWasCR ? 0x0d : -1;
          if (prev !== 0x0d) {
            marked ??= Buffer.from(chunk);
            marked[i] = BARE_LF_MARK; // "...\x01" then the real line end added below
          }
        }
        if (marked) chunk = Buffer.from(marked.toString('latin1').replace(/\x01/g, '\x01\r\n'), 'latin1');
      }
      if (chunk && chunk.length) lastWasCR = chunk[chunk.length - 1] === 0x0d;
      write(chunk, encoding, next);
    };
    parser._feedDataStream = feedDataFast;
    return parser;
  }

  override _onCommand(command: Buffer, callback?: () => void): void {
    const next = callback ?? (() => false);
    if (this._upgrading) return super._onCommand(command, callback);
    if (!this._ready) {
      // pipelining before the greeting: nothing is executed
      if (this.ctx.logging) this.ctx.log('<', redact(command, false));
      this.sendReply(REPLIES.earlyTalker);
      this.close();
      return;
    }
    const inAuth = !!this._nextHandler;
    if (this.ctx.logging) this.ctx.log('<', redact(command, inAuth));
    if (this.draining && !inAuth && !this.session.envelope.mailFrom) {
      // stopping: a transaction in progress may finish; nothing new starts
      this.sendReply(REPLIES.shuttingDown);
      return;
    }
    if (!inAuth) {
      let bad: SmtpReply | undefined;
      if (command.includes(BARE_LF_MARK)) bad = REPLIES.bareLineFeed;
      else if (command.includes(0x00)) bad = REPLIES.nulInCommand;
      else if (command.includes(0x0d)) bad = REPLIES.bareCarriageReturn;
      if (bad) {
        this.sendReply(bad);
        setImmediate(next);
        return;
      }
    }
    super._onCommand(command, callback);
  }

  override handler_EHLO(command: Buffer, callback: () => void): void {
    const parts = command.toString('latin1').trim().split(/\s+/);
    const hostname = parts[1] ?? '';
    const c = this.settings.connector;
    // eslint-disable-next-line no-control-regex
    if (parts.length !== 2 || hostname.length > 255 || /[\x00-\x1f\x7f]/.test(hostname)) {
      this.sendReply(REPLIES.invalidDomainName);
      return callback();
    }
    if (c.requireEHLODomain && !/^(\[[^\]]+\]|[a-z0-9-]+(\.[a-z0-9-]+)+\.?)$/i.test(hostname)) {
      this.sendReply(REPLIES.helloDomainRequired);
      this.close();
      return callback();
    }
    this.hostNameAppearsAs = hostname.toLowerCase();
    this._resetSession();
    const features: string[] = [];
    if (c.sizeEnabled === 'Enabled') features.push(Number.isFinite(c.maxMessageSize) ? `SIZE ${c.maxMessageSize}` : 'SIZE');
    else if (c.sizeEnabled === 'EnabledWithoutValue') features.push('SIZE');
    if (c.pipeliningEnabled) features.push('PIPELINING');
    if (c.deliveryStatusNotificationEnabled) features.push('DSN');
    if (c.enhancedStatusCodesEnabled) features.push('ENHANCEDSTATUSCODES');
    if (!this.secure && this.settings.tlsOffered) features.push('STARTTLS');
    if (this.settings.authOffered && !this.session.user && (this.secure || this.settings.authBeforeTls)) features.push('AUTH LOGIN PLAIN');
    if (c.eightBitMimeEnabled) features.push('8BITMIME');
    if (c.smtpUtf8Enabled) features.push('SMTPUTF8');
    this.send(250, [`${this.name} Hello [${this.remoteAddress}]`, ...features], false);
    callback();
  }

  /**
   * After the 221 the session is over: the socket is closed as soon as the reply has been handed to
   * the kernel, instead of reading on until the client's FIN or reset (most clients reset, which
   * costs an error object per session). Anything a client pipelines after QUIT is discarded, as
   * it would be anyway.
   */
  override handler_QUIT(command: Buffer, callback: () => void): void {
    super.handler_QUIT(command, callback);
    const socket = this._socket;
    if (!this._upgrading && !socket.destroyed) socket.once('finish', () => socket.destroy());
  }

  override handler_AUTH(command: Buffer, callback: () => void): void {
    const method = (command.toString('latin1').trim().split(/\s+/)[1] ?? '').toUpperCase();
    if (!this.hostNameAppearsAs) {
      this.sendReply(REPLIES.sendHelloFirst);
      return callback();
    }
    if (!this.settings.authOffered) {
      this.sendReply(REPLIES.authNotOffered);
      return callback();
    }
    if (!this.secure && !this.settings.authBeforeTls) {
      this.sendReply(REPLIES.encryptionRequired);
      return callback();
    }
    if (this.session.user) {
      this.sendReply(REPLIES.alreadyAuthenticated);
      return callback();
    }
    if (method !== 'PLAIN' && method !== 'LOGIN') {
      this.sendReply(REPLIES.authNotOffered);
      return callback();
    }
    if (this.session.envelope.mailFrom) {
      this.sendReply(REPLIES.senderAlreadySpecified);
      return callback();
    }
    if (this.settings.isLockedOut(this.ctx)) {
      this.ctx.log('*', '', 'Inbound AUTH refused: too many logon failures from this source');
      this.sendReply(REPLIES.tooManyLogonFailures);
      return callback();
    }
    super.handler_AUTH(command, callback);
  }

  /** For shutdown: let a transaction in progress finish, refuse anything that would start a new one. */
  startDraining(): void {
    this.draining = true;
  }
}

/** AUTH payloads never reach the log: only "AUTH <mechanism>" and a placeholder for responses. */
function redact(command: Buffer, inAuth: boolean): string {
  if (inAuth) return '<authentication response>';
  const line = command.toString('latin1').replace(/\x01$/, '');
  const parts = line.trim().split(/\s+/);
  if ((parts[0] ?? '').toUpperCase() === 'AUTH' && parts.length > 2) return `${parts[0]} ${parts[1]} <authentication response>`;
  return line;
}

/** smtp-server's session object -> Mailyard's context, for the connector's handlers. */
export const sessionContexts = new WeakMap<object, SessionContext>();
