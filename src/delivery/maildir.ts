/**
 * Maildir++ delivery: the store Dovecot, Courier and most IMAP servers read directly.
 *
 * Promises, per recipient:
 * - The mailbox path comes from the template through local-path.ts; unsafe addresses fail with
 *   550 5.1.3 and nothing is written.
 * - `cur/`, `new/` and `tmp/` are created as needed (mode 0700). The message is written into `tmp/`
 *   with `Return-Path:` and `Delivered-To:` on top, line ends converted to LF (the Maildir
 *   convention), fsync'd, then renamed into `new/` under a unique name
 *   `<sec>.M<usec>P<pid>Q<n>.<host>,S=<bytes on disk>,W=<bytes with CRLF>`, and `new/` is fsync'd.
 *   A message is in `new/` completely or not at all; a crash leaves at most a stray file in `tmp/`.
 * - Disk full, quota, permission and other local I/O errors are deferred (4.x.x), never lost.
 * - A message that already carries `Delivered-To:` for the same recipient is a mail loop: it fails
 *   with 554 5.4.6 instead of being stored again.
 * Aliases are not expanded here: the categorizer resolves recipients first (expandAliases).
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { fieldValue, findHeaderEnd, isField, parseHeaderFields } from '../model/message-headers.js';
import type { DeliveryAgent, DeliveryBatch, DeliveryResult, RecipientOutcome } from '../model/outcome.js';
import { reply } from '../model/reply.js';
import { maildirPathFor } from './local-path.js';

export { expandAliases } from './local-path.js';

export interface MaildirAgentOptions {
  /** Path template with {domain} and {local}. */
  readonly template: string;
  readonly logger: Logger;
  /** fsync files and directories (transportService.fsyncEnabled); default true. */
  readonly fsync?: boolean;
  /** Host part of file names; default os.hostname(). */
  readonly hostname?: string;
}

export interface MaildirWriteResult {
  /** Absolute path of the file in new/. */
  readonly file: string;
  readonly size: number;
}

let sequence = 0;

/** Maildir-safe host name: '/' and ':' are escaped as the Maildir spec asks. */
function safeHost(host: string): string {
  return host.replace(/\//g, '\\057').replace(/:/g, '\\072') || 'localhost';
}

function uniqueBase(host: string): string {
  const nowUs = BigInt(Date.now()) * 1000n + (process.hrtime.bigint() / 1000n) % 1000n;
  const sec = nowUs / 1_000_000n;
  const usec = nowUs % 1_000_000n;
  sequence = (sequence + 1) % 1_000_000_000;
  return `${sec}.M${usec}P${process.pid}Q${sequence}.${safeHost(host)}`;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Creates <maildir>/{cur,new,tmp}; fsyncs the parents of directories it had to create. */
export async function ensureMaildir(maildir: string, fsync = true): Promise<void> {
  const created = await mkdir(maildir, { recursive: true, mode: 0o700 });
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(maildir, sub), { recursive: true, mode: 0o700 });
  if (created !== undefined && fsync) await fsyncDir(resolve(maildir, '..'));
}

/** Copies the spooled message (CRLF) into fh with LF line ends; returns bytes written and the CRLF size. */
async function copyAsLf(fh: FileHandle, bodyPath: string, signal: AbortSignal): Promise<{ written: number; crlfSize: number }> {
  let written = 0;
  let lines = 0;
  let pendingCr = false;
  for await (const chunk of createReadStream(bodyPath, { signal }) as AsyncIterable<Buffer>) {
    let text = chunk;
    if (pendingCr) text = Buffer.concat([Buffer.from('\r'), text]);
    pendingCr = text.length > 0 && text[text.length - 1] === 0x0d;
    if (pendingCr) text = text.subarray(0, text.length - 1);
    const out = Buffer.from(text.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    for (const b of out) if (b === 0x0a) lines++;
    await fh.write(out);
    written += out.length;
  }
  if (pendingCr) {
    await fh.write(Buffer.from('\r'));
    written += 1;
  }
  return { written, crlfSize: written + lines };
}

/**
 * Writes one message into a Maildir with the two delivery headers on top and returns its final path.
 * Throws the underlying I/O error; the caller classifies it.
 */
export async function writeToMaildir(
  maildir: string,
  headers: string,
  bodyPath: string,
  options: { fsync?: boolean; hostname?: string; signal?: AbortSignal } = {},
): Promise<MaildirWriteResult> {
  const fsync = options.fsync ?? true;
  const signal = options.signal ?? new AbortController().signal;
  await ensureMaildir(maildir, fsync);
  const base = uniqueBase(options.hostname ?? osHostname());
  const tmpPath = join(maildir, 'tmp', base);
  const fh = await open(tmpPath, 'wx', 0o600);
  let renamed = false;
  try {
    const head = Buffer.from(headers.replace(/\r\n/g, '\n'), 'utf8');
    await fh.write(head);
    let headLines = 0;
    for (const b of head) if (b === 0x0a) headLines++;
    const body = await copyAsLf(fh, bodyPath, signal);
    if (fsync) await fh.sync();
    await fh.close();
    const size = head.length + body.written;
    const virtual = head.length + headLines + body.crlfSize;
    const finalPath = join(maildir, 'new', `${base},S=${size},W=${virtual}`);
    signal.throwIfAborted();
    await rename(tmpPath, finalPath);
    renamed = true;
    if (fsync) await fsyncDir(join(maildir, 'new'));
    return { file: resolve(finalPath), size };
  } finally {
    await fh.close().catch(() => undefined);
    if (!renamed) await unlink(tmpPath).catch(() => undefined);
  }
}

/** The two header lines a Maildir delivery adds at the top of the message. */
export function deliveryHeaders(sender: string | null, recipient: string): string {
  return `Return-Path: <${sender ?? ''}>\r\nDelivered-To: ${recipient}\r\n`;
}

/** Maps a local I/O error to a deferral; nothing about local storage is permanent. */
export function localIoOutcome(err: unknown, what: string): RecipientOutcome {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return { kind: 'deferred', category: 'local-io', reply: reply(452, '4.2.2', `${what}: no space left (${code})`), detail: String((err as Error).message) };
  }
  if (code === 'ABORT_ERR' || (err as Error | undefined)?.name === 'AbortError') {
    return { kind: 'deferred', category: 'local-io', reply: reply(451, '4.3.2', `${what}: delivery interrupted`), detail: 'aborted' };
  }
  return {
    kind: 'deferred',
    category: 'local-io',
    reply: reply(451, '4.3.0', `${what}: local error${code ? ` (${code})` : ''}`),
    detail: err instanceof Error ? err.message : String(err),
  };
}

/** Lower-cased Delivered-To addresses already in the message's header block (first 256 KB). */
export async function existingDeliveredTo(bodyPath: string): Promise<Set<string>> {
  const fh = await open(bodyPath, 'r');
  try {
    const buf = Buffer.alloc(256 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const data = buf.subarray(0, bytesRead);
    const end = findHeaderEnd(data)?.headerEnd ?? data.length;
    const fields = parseHeaderFields(data.subarray(0, end).toString('latin1')) ?? [];
    return new Set(fields.filter((f) => isField(f, 'Delivered-To')).map((f) => fieldValue(f).toLowerCase()));
  } finally {
    await fh.close();
  }
}

/** A DeliveryAgent writing each batch recipient's copy into its Maildir. */
export function createMaildirAgent(options: MaildirAgentOptions): DeliveryAgent {
  const log = options.logger.child({ component: 'maildir' });
  return {
    async deliver(batch: DeliveryBatch, signal: AbortSignal): Promise<DeliveryResult> {
      const outcomes = new Map<string, RecipientOutcome>();
      let seen: Set<string>;
      try {
        seen = await existingDeliveredTo(batch.bodyPath);
      } catch (err) {
        for (const r of batch.recipients) outcomes.set(r.address, localIoOutcome(err, 'Maildir'));
        return { outcomes };
      }
      for (const r of batch.recipients) {
        if (seen.has(r.address.toLowerCase())) {
          log.warn({ messageId: batch.messageId, recipient: r.address }, 'maildir: mail loop (Delivered-To already present)');
          outcomes.set(r.address, { kind: 'failed', category: 'loop', reply: reply(554, '5.4.6', `Mail loop: already delivered to ${r.address}`), detail: 'Delivered-To header already present' });
          continue;
        }
        if (signal.aborted) {
          outcomes.set(r.address, localIoOutcome(signal.reason ?? Object.assign(new Error('aborted'), { name: 'AbortError' }), 'Maildir'));
          continue;
        }
        const target = maildirPathFor(options.template, r.address);
        if (!target.ok) {
          log.warn({ messageId: batch.messageId, recipient: r.address, reason: target.reason }, 'maildir: recipient refused');
          outcomes.set(r.address, { kind: 'failed', category: 'recipient', reply: target.reply, detail: target.reason });
          continue;
        }
        try {
          const written = await writeToMaildir(target.path, deliveryHeaders(batch.envelope.mailFrom, r.address), batch.bodyPath, {
            signal,
            ...(options.fsync !== undefined ? { fsync: options.fsync } : {}),
            ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
          });
          log.debug({ messageId: batch.messageId, recipient: r.address, file: written.file }, 'maildir: delivered');
          outcomes.set(r.address, { kind: 'delivered', reply: reply(250, '2.0.0', `Saved to ${target.local}@${target.domain}`), host: 'maildir' });
        } catch (err) {
          log.warn({ messageId: batch.messageId, recipient: r.address, err }, 'maildir: delivery deferred');
          outcomes.set(r.address, localIoOutcome(err, 'Maildir'));
        }
      }
      return { outcomes };
    },
  };
}
