/**
 * The DATA stage of a Receive connector session: reads the message as smtp-server hands it over
 * (dot-unstuffed), holds the header block until it is complete to apply the header checks (size,
 * hop count, header firewall, missing Message-ID/Date for submissions), then hands header and
 * body to the Intake: as one Buffer at the end for a message up to GATHER_MAX, as a stream from
 * the moment it grows larger. Counts the real size as it goes and stops feeding the Intake as soon as a
 * limit is crossed, but always reads the client's data to its end so the reply lands in sequence.
 * Resolves with the Intake's result only after `accept` resolved, i.e. after the message is
 * durable; any limit or Intake failure resolves with the refusal instead (never throws).
 */
import { PassThrough, type Readable } from 'node:stream';
import type { IntakeResult } from '../model/intake.js';
import { IntakeError } from '../model/intake.js';
import { findHeaderEnd } from '../model/message-headers.js';
import type { SmtpReply } from '../model/reply.js';
import { applyHeaderFirewall, fieldValue, hasField, hopCountExceeded, localHopCountExceeded, splitHeader } from '../policy/headers.js';
import type { Permission } from '../policy/permissions.js';
import { REPLIES } from '../policy/replies.js';

export interface DataOptions {
  readonly source: Readable;
  /** Infinity when the session may bypass the limit. */
  readonly maxMessageSize: number;
  readonly maxHeaderSize: number;
  readonly maxHopCount: number;
  /** maxLocalHopCount and the FQDNs that count as "us" in Received fields' by clauses. */
  readonly maxLocalHopCount?: number;
  readonly localNames?: ReadonlySet<string>;
  readonly permissions: ReadonlySet<Permission>;
  readonly rejectBareLf: boolean;
  /** Fields to add when absent (authenticated submissions): full "Name: value" without CRLF. */
  readonly addIfMissing?: { readonly messageId: string; readonly date: string };
  /**
   * Written before the client's header (our Received field, CRLF-terminated, UTF-8). It goes into
   * the header buffer that is built anyway, so the Intake gets the message whole and need not copy
   * it once more to put the field in front.
   */
  readonly prepend?: string;
  /** Gets a Buffer for a message up to GATHER_MAX bytes, a stream for a larger one. */
  readonly accept: (body: Readable | Buffer) => Promise<IntakeResult>;
}

/**
 * A message up to this size is handed to the Intake as one Buffer when the data ends (the spool
 * gathers small messages in memory anyway); a larger one is streamed as it arrives.
 */
const GATHER_MAX = 256 * 1024;
/**
 * All sessions together hold at most this much gathered data; past it, new data streams to the
 * Intake at once (so thousands of slow senders cannot pin GATHER_MAX of memory each).
 */
const GATHER_BUDGET = 64 * 1024 * 1024;
let gatheredTotal = 0;

/** Bytes currently held by DATA stages waiting for their message to end (tests). */
export function gatheredBytes(): number {
  return gatheredTotal;
}

export type DataOutcome =
  | { readonly kind: 'accepted'; readonly result: IntakeResult; readonly internetMessageId?: string; readonly stripped: readonly string[] }
  | { readonly kind: 'rejected'; readonly reply: SmtpReply; readonly reason: string; readonly cause?: unknown };

export function receiveData(o: DataOptions): Promise<DataOutcome> {
  return new Promise<DataOutcome>((resolve) => {
    let total = 0;
    let lastByte = -1;
    let headerBuf: Buffer[] = [];
    let headerLen = 0;
    let out: PassThrough | undefined;
    /** Header and body gathered so far, until the message proves larger than GATHER_MAX. */
    let held: Buffer[] | undefined;
    let heldLen = 0;
    /** This session's share of GATHER_BUDGET; given back exactly once whatever the ending. */
    let reserved = 0;
    const release = () => {
      gatheredTotal -= reserved;
      reserved = 0;
    };
    const reserve = (n: number): boolean => {
      if (gatheredTotal + n > GATHER_BUDGET) return false;
      gatheredTotal += n;
      reserved += n;
      return true;
    };
    let accepting: Promise<IntakeResult> | undefined;
    let failure: { reply: SmtpReply; reason: string } | undefined;
    let internetMessageId: string | undefined;
    let stripped: string[] = [];
    let settled = false;

    const finish = (v: DataOutcome) => {
      release();
      if (!settled) {
        settled = true;
        resolve(v);
      }
    };
    const fail = (reply: SmtpReply, reason: string) => {
      if (failure) return;
      failure = { reply, reason };
      headerBuf = [];
      held = undefined;
      release();
      if (out) out.destroy(new Error(`message refused: ${reason}`));
      o.source.resume();
    };

    const startBody = (header: Buffer, rest: Buffer | undefined) => {
      const fields = splitHeader(header.toString('latin1'));
      if (hopCountExceeded(fields, o.maxHopCount)) return fail(REPLIES.hopCountExceeded, `more than ${o.maxHopCount} Received fields`);
      if (o.maxLocalHopCount && o.localNames && localHopCountExceeded(fields, o.maxLocalHopCount, o.localNames)) {
        return fail(REPLIES.hopCountExceeded, `more than ${o.maxLocalHopCount} Received fields written by this organization's servers`);
      }
      const fw = applyHeaderFirewall(fields, o.permissions);
      stripped = fw.stripped;
      const extra: string[] = [];
      if (o.addIfMissing) {
        if (!hasField(fw.kept, 'message-id')) {
          extra.push(`Message-ID: ${o.addIfMissing.messageId}\r\n`);
          internetMessageId = o.addIfMissing.messageId;
        }
        if (!hasField(fw.kept, 'date')) extra.push(`Date: ${o.addIfMissing.date}\r\n`);
      }
      internetMessageId ??= fieldValue(fw.kept, 'message-id');
      const clientHeader = Buffer.from(fw.kept.map((f) => f.raw).join('') + extra.join('') + '\r\n', 'latin1');
      const newHeader = o.prepend ? Buffer.concat([Buffer.from(o.prepend, 'utf8'), clientHeader]) : clientHeader;
      held = [newHeader];
      heldLen = newHeader.length;
      if (!reserve(newHeader.length)) {
        held = undefined;
        startStream([newHeader]);
      }
      if (rest && rest.length) body(rest);
    };

    /** The Intake gets its stream once the message outgrows GATHER_MAX. */
    const startStream = (pending: Buffer[]) => {
      release();
      const stream = new PassThrough();
      out = stream;
      // The Intake sees a destroyed stream through its own reads; this listener only keeps an
      // abort (limit crossed, client gone) from surfacing as an unhandled 'error' event.
      stream.on('error', () => {});
      accepting = o.accept(stream);
      // Attach a handler at once so an early rejection is never unhandled.
      accepting.catch(() => {});
      stream.on('drain', () => o.source.resume());
      let room = true;
      for (const b of pending) room = stream.write(b);
      if (!room) o.source.pause();
    };

    const body = (chunk: Buffer) => {
      if (out) {
        if (!out.write(chunk)) o.source.pause();
        return;
      }
      held!.push(chunk);
      heldLen += chunk.length;
      if (heldLen > GATHER_MAX || !reserve(chunk.length)) {
        const pending = held!;
        held = undefined;
        startStream(pending);
      }
    };

    const checkBareLf = (chunk: Buffer) => {
      let i = chunk.indexOf(0x0a);
      while (i >= 0) {
        const prev = i > 0 ? chunk[i - 1] : lastByte;
        if (prev !== 0x0d) return true;
        i = chunk.indexOf(0x0a, i + 1);
      }
      return false;
    };

    o.source.on('data', (chunk: Buffer) => {
      if (failure) return;
      total += chunk.length;
      if (o.rejectBareLf && checkBareLf(chunk)) return fail(REPLIES.bareLineFeedInData, 'bare line feed in message data');
      lastByte = chunk[chunk.length - 1] ?? lastByte;
      if (total > o.maxMessageSize) return fail(REPLIES.messageTooBig, `message larger than ${o.maxMessageSize} bytes`);
      if (out || held) {
        body(chunk);
        return;
      }
      headerBuf.push(chunk);
      headerLen += chunk.length;
      const all = headerBuf.length === 1 ? headerBuf[0]! : Buffer.concat(headerBuf, headerLen);
      const end = findHeaderEnd(all);
      if (!end) {
        if (headerLen > o.maxHeaderSize) fail(REPLIES.headerTooBig, `header larger than ${o.maxHeaderSize} bytes`);
        else headerBuf = [all];
        return;
      }
      if (end.headerEnd > o.maxHeaderSize) return fail(REPLIES.headerTooBig, `header larger than ${o.maxHeaderSize} bytes`);
      headerBuf = [];
      startBody(all.subarray(0, end.headerEnd), all.subarray(end.bodyStart));
    });

    o.source.on('end', () => {
      if (!failure && !out && !held) {
        // The message has no blank line: all of it is header.
        const all = headerBuf.length === 1 ? headerBuf[0]! : Buffer.concat(headerBuf, headerLen);
        if (all.length > o.maxHeaderSize) fail(REPLIES.headerTooBig, `header larger than ${o.maxHeaderSize} bytes`);
        else startBody(all.length && all[all.length - 1] !== 0x0a ? Buffer.concat([all, Buffer.from('\r\n')]) : all, undefined);
      }
      if (failure) return finish({ kind: 'rejected', reply: failure.reply, reason: failure.reason });
      if (out) out.end();
      else {
        accepting = o.accept(Buffer.concat(held!, heldLen));
        held = undefined;
        release();
      }
      accepting!.then(
        (result) => finish({ kind: 'accepted', result, internetMessageId, stripped }),
        (err: unknown) =>
          finish(
            err instanceof IntakeError
              ? { kind: 'rejected', reply: err.reply, reason: err.message, cause: err }
              : { kind: 'rejected', reply: REPLIES.transactionFailed, reason: `intake failed: ${(err as Error)?.message ?? String(err)}`, cause: err },
          ),
      );
    });

    const aborted = (err?: Error) => {
      if (settled) return;
      if (out && !out.destroyed) out.destroy(err ?? new Error('client went away during DATA'));
      finish({ kind: 'rejected', reply: REPLIES.transactionFailed, reason: `client connection lost during DATA${err ? `: ${err.message}` : ''}`, cause: err });
    };
    o.source.on('error', aborted);
    o.source.on('close', () => {
      if (!o.source.readableEnded) aborted();
    });
  });
}
