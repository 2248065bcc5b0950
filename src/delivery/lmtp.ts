/**
 * LMTP client (RFC 2033) for mailbox delivery to Dovecot and other LMTP servers, over TCP or a
 * UNIX socket, and the DeliveryAgent built on it.
 *
 * Promises:
 * - Each batch recipient gets its own outcome: the RCPT TO reply when it was refused there,
 *   otherwise its own reply after the message (LMTP answers once per accepted recipient).
 *   2xx → delivered, 4xx → deferred, 5xx → failed with the server's reply.
 * - A connection that cannot be opened defers every recipient with `connectionFailure` set (the
 *   queue goes to Retry); a connection lost mid-transaction defers the recipients that have no
 *   answer yet (a recipient the server already confirmed stays delivered).
 * - Connections are reused for up to `maxMessagesPerConnection` messages, kept idle for a short
 *   while (at most `maxIdleConnections`), and closed with QUIT by `close()`.
 * - Every command and reply goes to the Delivery protocol log (the message body as a byte count).
 * - The body is sent with CRLF line ends and dot-stuffing; every wait is bounded by `timeoutMs`.
 * This client does not use PIPELINING: an LMTP hop is local and latency is not the constraint.
 */
import { protocolSession } from '../logging/protocol-session.js';
import { createReadStream } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Envelope, Recipient } from '../model/envelope.js';
import type { DeliveryAgent, DeliveryBatch, DeliveryResult, FailureCategory, RecipientOutcome } from '../model/outcome.js';
import type { ProtocolLogSink } from '../model/protocol.js';
import type { ProtocolLineFn } from '../logging/protocol-session.js';
import { reply, replyClass, type SmtpReply } from '../model/reply.js';

export type LmtpTarget = { readonly socket: string } | { readonly host: string; readonly port: number };

export interface LmtpAgentOptions {
  readonly target: LmtpTarget;
  /** Name for the protocol log (connector name, or "Mailbox Delivery"). */
  readonly connectorName: string;
  /** Our name in LHLO. */
  readonly lhloName: string;
  readonly logger: Logger;
  readonly protocolLog: ProtocolLogSink;
  readonly protocolLogging?: boolean;
  readonly maxMessagesPerConnection?: number;
  readonly maxIdleConnections?: number;
  /** Bound on every wait: connect, each reply, each write. Default 60 s. */
  readonly timeoutMs?: number;
  /** How long an idle connection is kept. Default 30 s. */
  readonly idleMs?: number;
}

export class LmtpError extends Error {
  constructor(
    message: string,
    readonly stage: 'connect' | 'session',
    readonly reply?: SmtpReply,
  ) {
    super(message);
    this.name = 'LmtpError';
  }
}

/** Pure: the reply lines of one (possibly multi-line) answer to an SmtpReply. */
export function replyFromLines(lines: readonly string[]): SmtpReply {
  const code = Number(lines[0]!.slice(0, 3));
  const texts = lines.map((l) => l.slice(4));
  const m = /^([245]\.\d{1,3}\.\d{1,3})\s+(.*)$/.exec(texts[0] ?? '');
  if (m) {
    texts[0] = m[2]!;
    return reply(code, m[1], texts.map((t) => t.replace(/^[245]\.\d{1,3}\.\d{1,3}\s+/, '')).join('\n'));
  }
  return reply(code, undefined, texts.join('\n'));
}

/** Pure: an LMTP server's reply about one recipient, as that recipient's outcome. */
export function outcomeFromReply(r: SmtpReply, host: string, stage: 'rcpt' | 'data' | 'mail'): RecipientOutcome {
  const cls = replyClass(r);
  if (cls === 2) return { kind: 'delivered', reply: r, host };
  const category: FailureCategory =
    r.code === 552 || r.enhanced === '5.3.4' || r.enhanced?.startsWith('4.2.2') || r.enhanced?.startsWith('5.2.2')
      ? 'size'
      : stage === 'mail'
        ? 'policy'
        : 'recipient';
  const detail = `${stage.toUpperCase()} answered ${r.code}${r.enhanced ? ` ${r.enhanced}` : ''} ${r.text}`.trim();
  if (cls === 4 || r.code < 200) return { kind: 'deferred', reply: r, category, detail, host };
  return { kind: 'failed', reply: r, category, detail, host };
}

type LogFn = ProtocolLineFn;

/** One LMTP session. Not safe for concurrent use: one message at a time. */
export class LmtpConnection {
  readonly extensions = new Set<string>();
  messages = 0;
  broken = false;
  private buffer = '';
  private lines: string[] = [];
  private waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  private queued: SmtpReply[] = [];
  private failure: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
    readonly log: LogFn,
    readonly remote: string,
  ) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => this.onData(d));
    socket.on('error', (err) => this.onFailure(err));
    socket.on('close', () => {
      this.log('-', '', 'session end');
      this.onFailure(new Error('connection closed'));
    });
  }

  /** Opens a connection, reads the greeting and sends LHLO. */
  static async open(target: LmtpTarget, lhloName: string, timeoutMs: number, makeLog: (local: string, remote: string) => LogFn): Promise<LmtpConnection> {
    const remote = 'socket' in target ? target.socket : `${target.host}:${target.port}`;
    const socket = 'socket' in target ? netConnect({ path: target.socket }) : netConnect({ host: target.host, port: target.port });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new LmtpError(`connect to ${remote} timed out`, 'connect'));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new LmtpError(`connect to ${remote} failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`, 'connect'));
      });
    });
    const local = socket.localAddress ? `${socket.localAddress}:${socket.localPort}` : 'local';
    const log = makeLog(local, 'socket' in target ? target.socket : `${socket.remoteAddress ?? target.host}:${socket.remotePort ?? target.port}`);
    log('+', '', 'session start');
    const conn = new LmtpConnection(socket, timeoutMs, log, remote);
    try {
      const greeting = await conn.read();
      if (greeting.code !== 220) throw new LmtpError(`unexpected greeting ${greeting.code} ${greeting.text}`, 'connect', greeting);
      const lhlo = await conn.command(`LHLO ${lhloName}`);
      if (lhlo.code !== 250) throw new LmtpError(`LHLO refused: ${lhlo.code} ${lhlo.text}`, 'connect', lhlo);
      for (const line of lhlo.text.split('\n').slice(1)) conn.extensions.add(line.trim().split(/\s+/)[0]!.toUpperCase());
    } catch (err) {
      conn.destroy();
      throw err instanceof LmtpError ? err : new LmtpError(`LMTP session setup with ${remote} failed: ${(err as Error).message}`, 'connect');
    }
    return conn;
  }

  private onData(data: string): void {
    this.buffer += data;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      this.lines.push(line);
      if (!/^\d{3}-/.test(line)) {
        const lines = this.lines;
        this.lines = [];
        this.log('<', lines.join(' / '));
        const r = /^\d{3}/.test(lines[0] ?? '') ? replyFromLines(lines) : reply(500, undefined, `unparseable reply: ${lines.join(' ')}`);
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = undefined;
          clearTimeout(w.timer);
          w.resolve(r);
        } else {
          this.queued.push(r);
        }
      }
    }
    if (this.buffer.length > 64 * 1024) this.onFailure(new Error('reply line too long'));
  }

  private onFailure(err: Error): void {
    if (!this.failure) this.failure = err;
    this.broken = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(new LmtpError(err.message, 'session'));
    }
  }

  /** The next reply. */
  read(): Promise<SmtpReply> {
    const q = this.queued.shift();
    if (q) return Promise.resolve(q);
    if (this.failure) return Promise.reject(new LmtpError(this.failure.message, 'session'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.broken = true;
        this.log('*', `no reply within ${this.timeoutMs} ms`, 'timeout');
        this.socket.destroy();
        reject(new LmtpError(`no reply within ${this.timeoutMs} ms`, 'session'));
      }, this.timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  async write(data: string | Buffer): Promise<void> {
    if (this.failure) throw new LmtpError(this.failure.message, 'session');
    if (this.socket.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        reject(new LmtpError(`write stalled for ${this.timeoutMs} ms`, 'session'));
      }, this.timeoutMs);
      this.socket.once('drain', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async command(line: string): Promise<SmtpReply> {
    this.log('>', line);
    await this.write(`${line}\r\n`);
    return this.read();
  }

  /** Sends the spooled message with CRLF line ends and dot-stuffing, then the final dot. */
  async sendBody(bodyPath: string, signal: AbortSignal): Promise<number> {
    let atLineStart = true;
    let prevCr = false;
    let total = 0;
    for await (const chunk of createReadStream(bodyPath, { signal }) as AsyncIterable<Buffer>) {
      const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
      let n = 0;
      for (const b of chunk) {
        if (atLineStart && b === 0x2e) out[n++] = 0x2e;
        if (b === 0x0a && !prevCr) out[n++] = 0x0d;
        out[n++] = b;
        atLineStart = b === 0x0a;
        prevCr = b === 0x0d;
      }
      total += n;
      await this.write(out.subarray(0, n));
    }
    const tail = atLineStart ? '.\r\n' : '\r\n.\r\n';
    await this.write(tail);
    this.log('>', `<${total} bytes of message data>`);
    this.log('>', '.');
    return total;
  }

  async quit(): Promise<void> {
    if (this.broken) return this.destroy();
    try {
      await this.command('QUIT');
    } catch {
      // the server may close first
    }
    this.destroy();
  }

  destroy(): void {
    this.broken = true;
    if (!this.socket.destroyed) this.socket.destroy();
  }
}

function mailParams(conn: LmtpConnection, envelope: Envelope): string {
  const p: string[] = [];
  if (envelope.body === '8BITMIME' && conn.extensions.has('8BITMIME')) p.push('BODY=8BITMIME');
  if (envelope.smtputf8 && conn.extensions.has('SMTPUTF8')) p.push('SMTPUTF8');
  if (conn.extensions.has('DSN')) {
    if (envelope.ret) p.push(`RET=${envelope.ret}`);
    if (envelope.envid) p.push(`ENVID=${envelope.envid}`);
  }
  return p.length ? ` ${p.join(' ')}` : '';
}

function rcptParams(conn: LmtpConnection, r: Recipient): string {
  if (!conn.extensions.has('DSN')) return '';
  const p: string[] = [];
  if (r.notify) p.push(`NOTIFY=${r.notify.length ? r.notify.join(',') : 'NEVER'}`);
  if (r.orcpt) p.push(`ORCPT=${r.orcpt}`);
  return p.length ? ` ${p.join(' ')}` : '';
}

/**
 * Runs one transaction on an open connection. Fills `outcomes` as answers arrive, so a lost
 * connection leaves only the unanswered recipients to be deferred by the caller.
 */
export async function lmtpTransaction(conn: LmtpConnection, batch: DeliveryBatch, outcomes: Map<string, RecipientOutcome>, signal: AbortSignal): Promise<void> {
  const host = conn.remote;
  const mail = await conn.command(`MAIL FROM:<${batch.envelope.mailFrom ?? ''}>${mailParams(conn, batch.envelope)}`);
  if (replyClass(mail) !== 2) {
    for (const r of batch.recipients) outcomes.set(r.address, outcomeFromReply(mail, host, 'mail'));
    await conn.command('RSET');
    return;
  }
  const accepted: Recipient[] = [];
  for (const r of batch.recipients) {
    signal.throwIfAborted();
    const answer = await conn.command(`RCPT TO:<${r.address}>${rcptParams(conn, r)}`);
    if (replyClass(answer) === 2) accepted.push(r);
    else outcomes.set(r.address, outcomeFromReply(answer, host, 'rcpt'));
  }
  if (accepted.length === 0) {
    await conn.command('RSET');
    return;
  }
  const data = await conn.command('DATA');
  if (data.code !== 354) {
    for (const r of accepted) outcomes.set(r.address, outcomeFromReply(data.code < 400 ? reply(451, '4.5.0', `unexpected DATA reply ${data.code}`) : data, host, 'data'));
    await conn.command('RSET');
    return;
  }
  await conn.sendBody(batch.bodyPath, signal);
  for (const r of accepted) outcomes.set(r.address, outcomeFromReply(await conn.read(), host, 'data'));
  conn.messages++;
}

/** A pooled LMTP DeliveryAgent. */
export function createLmtpAgent(options: LmtpAgentOptions): DeliveryAgent & { close(): Promise<void> } {
  const log = options.logger.child({ component: 'lmtp', connector: options.connectorName });
  const timeoutMs = options.timeoutMs ?? 60_000;
  const idleMs = options.idleMs ?? 30_000;
  const maxMessages = options.maxMessagesPerConnection ?? 20;
  const maxIdle = options.maxIdleConnections ?? 5;
  const idle: { conn: LmtpConnection; timer: NodeJS.Timeout }[] = [];
  const logging = options.protocolLogging ?? true;
  let closed = false;

  const makeLog = (local: string, remote: string): LogFn =>
    protocolSession({ sink: options.protocolLog, service: 'Delivery', connectorId: options.connectorName, enabled: logging, endpoints: () => ({ local, remote }) });

  async function acquire(): Promise<LmtpConnection> {
    while (idle.length) {
      const entry = idle.pop()!;
      clearTimeout(entry.timer);
      if (!entry.conn.broken) return entry.conn;
    }
    return LmtpConnection.open(options.target, options.lhloName, timeoutMs, makeLog);
  }

  function release(conn: LmtpConnection): void {
    if (conn.broken) return conn.destroy();
    if (closed || conn.messages >= maxMessages || idle.length >= maxIdle) {
      void conn.quit();
      return;
    }
    const timer = setTimeout(() => {
      const i = idle.findIndex((e) => e.conn === conn);
      if (i >= 0) idle.splice(i, 1);
      void conn.quit();
    }, idleMs);
    timer.unref();
    idle.push({ conn, timer });
  }

  return {
    async deliver(batch: DeliveryBatch, signal: AbortSignal): Promise<DeliveryResult> {
      const outcomes = new Map<string, RecipientOutcome>();
      let conn: LmtpConnection;
      try {
        conn = await acquire();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const r = err instanceof LmtpError && err.reply ? err.reply : reply(451, '4.4.1', `LMTP server not reachable: ${message}`);
        log.warn({ messageId: batch.messageId, err: message }, 'lmtp: connection failed');
        for (const rc of batch.recipients) {
          outcomes.set(rc.address, replyClass(r) === 5 ? outcomeFromReply(r, 'lmtp', 'mail') : { kind: 'deferred', category: 'connect', reply: r, detail: message });
        }
        return { outcomes, connectionFailure: replyClass(r) !== 5, session: { host: remoteName(options.target) } };
      }
      const onAbort = (): void => conn.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await lmtpTransaction(conn, batch, outcomes, signal);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log.warn({ messageId: batch.messageId, err: message }, 'lmtp: session failed');
        conn.destroy();
        for (const r of batch.recipients) {
          if (!outcomes.has(r.address)) {
            outcomes.set(r.address, { kind: 'deferred', category: 'protocol', reply: reply(451, '4.4.2', `LMTP session lost: ${message}`), detail: message, host: conn.remote });
          }
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
        release(conn);
      }
      return { outcomes, session: { host: conn.remote } };
    },
    async close(): Promise<void> {
      closed = true;
      const all = idle.splice(0);
      for (const e of all) clearTimeout(e.timer);
      await Promise.all(all.map((e) => e.conn.quit()));
    },
  };
}

/**
 * Asks the LMTP server whether it would take mail for `address` (LHLO, MAIL FROM:<>, RCPT TO, RSET,
 * QUIT) — for recipientValidation with LMTP. 'exists' on 2xx, 'unknown' on 5xx, 'tempfail' on a
 * 4xx or when the server cannot be reached (the caller answers 4xx then, never 550).
 */
export async function checkLmtpRecipient(
  target: LmtpTarget,
  address: string,
  options: { lhloName: string; timeoutMs?: number },
): Promise<'exists' | 'unknown' | 'tempfail'> {
  let conn: LmtpConnection | undefined;
  try {
    conn = await LmtpConnection.open(target, options.lhloName, options.timeoutMs ?? 10_000, () => () => undefined);
    const mail = await conn.command('MAIL FROM:<>');
    if (replyClass(mail) !== 2) return 'tempfail';
    const rcpt = await conn.command(`RCPT TO:<${address}>`);
    await conn.command('RSET');
    return replyClass(rcpt) === 2 ? 'exists' : replyClass(rcpt) === 5 ? 'unknown' : 'tempfail';
  } catch {
    return 'tempfail';
  } finally {
    await conn?.quit();
  }
}

function remoteName(t: LmtpTarget): string {
  return 'socket' in t ? t.socket : `${t.host}:${t.port}`;
}
