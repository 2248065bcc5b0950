/**
 * The on-disk record of one queued message (queue/v1/records/<id>.json): the envelope, where it
 * came from, and the state of every recipient. Pure: encode/decode and validation only; a record
 * that fails `decodeRecord` is corrupt and gets quarantined by the spool. Versioned by `v`.
 * Times are milliseconds since the epoch.
 */
import type { DsnNotify, MessageSource } from '../model/envelope.js';
import type { MessageId } from '../model/ids.js';
import type { NextHopKey } from '../model/routing.js';

export const RECORD_VERSION = 1;

export type RecipientStatus = 'pending' | 'delivered' | 'failed';

export interface RecipientState {
  readonly address: string;
  readonly orcpt?: string;
  readonly notify?: readonly DsnNotify[];
  readonly status: RecipientStatus;
  /** Set by the categorizer; Unreachable recipients carry the Unreachable key. */
  readonly route?: NextHopKey;
  /** Consecutive failed attempts. */
  readonly attempts: number;
  readonly nextAttemptAt?: number;
  /** Last reply or error text ("451 4.3.0 try later", "connect ECONNREFUSED ..."). */
  readonly lastError?: string;
  /** Final reply for delivered/failed recipients ("250 2.0.0 OK", "550 5.1.1 User unknown"). */
  readonly finalReply?: string;
  readonly remoteHost?: string;
  /** delivered through a relay that does not do DSNs (a "relayed" notice is due if asked for). */
  readonly relayed?: boolean;
  readonly completedAt?: number;
  /** Terminal before any DSN was sent (e.g. bounced by the categorizer at intake): send it after load. */
  readonly dsnPending?: boolean;
}

export interface MessageRecord {
  readonly v: typeof RECORD_VERSION;
  readonly id: MessageId;
  readonly receivedAt: number;
  readonly mailFrom: string | null;
  readonly body: '7BIT' | '8BITMIME' | 'BINARYMIME';
  readonly smtputf8: boolean;
  readonly ret?: 'FULL' | 'HDRS';
  readonly envid?: string;
  readonly source: MessageSource;
  /** Bytes of the spooled content file. */
  readonly size: number;
  /** From the header block, read once while spooling. */
  readonly internetMessageId?: string;
  readonly subject?: string;
  readonly fromHeader?: string;
  /** Received: headers counted while spooling (loop protection). */
  readonly hopCount: number;
  readonly recipients: readonly RecipientState[];
  readonly categorized: boolean;
  readonly delayNotified: boolean;
  /** Times processing of this message was started and not finished (crash detection). */
  readonly poisonCount: number;
  readonly suspended: boolean;
  readonly poisoned: boolean;
  /** The submitter's dedupe key (IntakeRequest.dedupeKey); absent in older records and SMTP mail. */
  readonly dedupeKey?: string;
}

export function encodeRecord(r: MessageRecord): string {
  return `${JSON.stringify(r)}\n`;
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Parses and checks a record; returns an error text for anything unusable. */
export function decodeRecord(input: string | unknown, expectedId?: string): MessageRecord | { error: string } {
  let raw: unknown = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(input);
    } catch (err) {
      return { error: `not JSON (${(err as Error).message}); truncated or damaged` };
    }
  }
  if (!isObj(raw)) return { error: 'not a JSON object' };
  if (raw.v !== RECORD_VERSION) return { error: `unknown record version ${JSON.stringify(raw.v)}` };
  if (typeof raw.id !== 'string' || (expectedId !== undefined && raw.id !== expectedId)) return { error: 'id missing or not matching the file name' };
  if (typeof raw.receivedAt !== 'number' || !Number.isFinite(raw.receivedAt)) return { error: 'receivedAt missing' };
  if (!(raw.mailFrom === null || typeof raw.mailFrom === 'string')) return { error: 'mailFrom missing' };
  if (typeof raw.size !== 'number') return { error: 'size missing' };
  if (!isObj(raw.source)) return { error: 'source missing' };
  if (!Array.isArray(raw.recipients) || raw.recipients.length === 0) return { error: 'no recipients' };
  for (const r of raw.recipients) {
    if (!isObj(r) || typeof r.address !== 'string' || !['pending', 'delivered', 'failed'].includes(r.status as string) || typeof r.attempts !== 'number') {
      return { error: 'a recipient entry is malformed' };
    }
  }
  // Defaults filled in place: the parsed object becomes the record (no copy; 100,000 records load).
  const r = raw as Record<string, unknown>;
  if (typeof r.hopCount !== 'number') r.hopCount = 0;
  for (const k of ['categorized', 'delayNotified', 'suspended', 'poisoned'] as const) if (r[k] !== true) r[k] = false;
  if (typeof r.poisonCount !== 'number') r.poisonCount = 0;
  if (r.dedupeKey !== undefined && typeof r.dedupeKey !== 'string') delete r.dedupeKey;
  return r as unknown as MessageRecord;
}

/**
 * Shares equal strings and routes between loaded records (statuses, next-hop keys, errors,
 * connector names repeat across thousands of messages). Mutates the freshly parsed record.
 */
export class Interner {
  private strings = new Map<string, string>();
  private routes = new Map<string, unknown>();

  str<T extends string | undefined>(s: T): T {
    if (s === undefined || s.length > 200) return s;
    const hit = this.strings.get(s);
    if (hit !== undefined) return hit as T;
    this.strings.set(s, s);
    return s;
  }

  record(rec: MessageRecord): MessageRecord {
    const r = rec as unknown as Record<string, unknown>;
    if (typeof r.mailFrom === 'string') r.mailFrom = this.str(r.mailFrom);
    r.body = this.str(r.body as string);
    const src = r.source as Record<string, unknown>;
    for (const k of ['kind', 'connector', 'helo', 'clientHostname', 'authUser'] as const) if (typeof src[k] === 'string') src[k] = this.str(src[k] as string);
    for (const x of rec.recipients as unknown as Record<string, unknown>[]) {
      x.status = this.str(x.status as string);
      if (typeof x.lastError === 'string') x.lastError = this.str(x.lastError);
      if (typeof x.remoteHost === 'string') x.remoteHost = this.str(x.remoteHost);
      const route = x.route as { deliveryType: string; nextHopDomain: string; connector: string | null } | undefined;
      if (route) {
        const k = `${route.deliveryType}:${route.nextHopDomain}:${route.connector ?? ''}`;
        const hit = this.routes.get(k);
        if (hit) x.route = hit;
        else this.routes.set(k, route);
      }
    }
    return rec;
  }
}

/** Header facts read while spooling: only the header block, never the body. */
export interface HeaderFacts {
  readonly internetMessageId?: string;
  readonly subject?: string;
  readonly fromHeader?: string;
  readonly hopCount: number;
}

/** Parses an unfolded view of a header block (text up to the first empty line). */
export function readHeaderFacts(headerBlock: string): HeaderFacts {
  const lines = headerBlock.split(/\r?\n/);
  const fields: [string, string][] = [];
  for (const line of lines) {
    if (line === '') break;
    if (/^[ \t]/.test(line) && fields.length) {
      fields[fields.length - 1]![1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) fields.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }
  let hopCount = 0;
  let internetMessageId: string | undefined;
  let subject: string | undefined;
  let fromHeader: string | undefined;
  for (const [name, value] of fields) {
    if (name === 'received') hopCount++;
    else if (name === 'message-id' && internetMessageId === undefined) internetMessageId = value;
    else if (name === 'subject' && subject === undefined) subject = value.slice(0, 500);
    else if (name === 'from' && fromHeader === undefined) fromHeader = value.slice(0, 500);
  }
  return {
    hopCount,
    ...(internetMessageId !== undefined ? { internetMessageId } : {}),
    ...(subject !== undefined ? { subject } : {}),
    ...(fromHeader !== undefined ? { fromHeader } : {}),
  };
}

/** Streams LF or CRLF input to CRLF output; a CR split from its LF across chunks is handled. */
export class CrlfNormalizer {
  private lastCR = false;

  push(chunk: Buffer): Buffer {
    let out: Buffer[] | undefined;
    let start = 0;
    let idx = chunk.indexOf(10);
    while (idx !== -1) {
      const prevCR = idx > 0 ? chunk[idx - 1] === 13 : this.lastCR;
      if (!prevCR) {
        out ??= [];
        out.push(chunk.subarray(start, idx), CRLF);
        start = idx + 1;
      }
      idx = chunk.indexOf(10, idx + 1);
    }
    if (chunk.length) this.lastCR = chunk[chunk.length - 1] === 13;
    if (!out) return chunk;
    out.push(chunk.subarray(start));
    return Buffer.concat(out);
  }
}
const CRLF = Buffer.from('\r\n');
