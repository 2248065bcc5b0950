/**
 * Pure part of the Pickup and Replay directories: from the first bytes of a file to the envelope,
 * the rewritten header block and the offset where the body starts, or the reason the file is bad.
 *
 * Pickup (reference 8.2): sender from `Sender` (at most one address) else `From` (exactly one
 * address unless `Sender` names one); recipients from To, Cc and Bcc (deduplicated, case-insensitive
 * compare); Bcc, Received, Resent-* and organization/forest headers are removed; when only Bcc named
 * recipients, `To: Undisclosed recipients:;` is added; Message-ID and Date are added when missing.
 * The header block may not exceed maxHeaderSize and the recipients maxRecipients.
 *
 * Replay (reference 8.3): the envelope comes from the leading X-Sender / X-Receiver block, which is
 * removed; Bcc is removed; organization/forest headers are kept only when X-CreatedBy says the file
 * was written by a trusted transport (MSExchange15 or Mailyard); no header or recipient limits.
 *
 * Files are bad when: no empty line/valid header block, NUL bytes, no sender, no recipients, too
 * many recipients, header block over the limit, or an unreadable replay envelope.
 */
import addressparser from 'nodemailer/lib/addressparser';
import type { Envelope, Recipient } from '../model/envelope.js';
import {
  fieldValue,
  findHeaderEnd,
  isField,
  isFirewalledHeader,
  joinFields,
  parseEnvelopeHeaders,
  parseHeaderFields,
  type HeaderField,
} from '../model/message-headers.js';

export interface PickupLimits {
  readonly maxHeaderSize: number;
  readonly maxRecipients: number;
}

export interface ParseContext {
  readonly kind: 'pickup' | 'replay';
  readonly limits: PickupLimits;
  /** Whole file size in bytes. */
  readonly fileSize: number;
  /** Whether the file holds bytes >= 0x80 (decided by the caller's scan). */
  readonly eightBit: boolean;
  readonly now: Date;
  readonly fqdn: string;
  /** A fresh unique token for a generated Message-ID. */
  readonly uniqueId: string;
}

export type ParsedPickupFile =
  | {
      readonly ok: true;
      readonly envelope: Envelope;
      /** The rewritten header block, CRLF, ending with the empty line. */
      readonly header: string;
      /** How to turn `header` back into bytes (utf8 when the original block was valid UTF-8). */
      readonly headerEncoding: 'utf8' | 'latin1';
      /** Offset in the file of the first body byte. */
      readonly bodyOffset: number;
      /** Our Received header for IntakeRequest.prepend. */
      readonly received: string;
      readonly subject?: string;
      readonly internetMessageId?: string;
    }
  | { readonly ok: false; readonly reason: string; readonly sender?: string; readonly recipients?: readonly string[] };

/** Largest replay header block read (the Pickup limit does not apply to Replay). */
export const REPLAY_MAX_HEADER = 1024 * 1024;

/** How many leading bytes of a file the parser needs to see. */
export function headBytesNeeded(kind: 'pickup' | 'replay', limits: PickupLimits): number {
  return (kind === 'pickup' ? limits.maxHeaderSize : REPLAY_MAX_HEADER) + 4;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 date-time in UTC: "Mon, 23 Nov 2026 18:46:47 +0000". */
export function formatMailDate(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function isPlausibleAddress(a: string): boolean {
  const at = a.lastIndexOf('@');
  return at > 0 && at < a.length - 1 && !/[\s<>()\u0000-\u001f]/.test(a);
}

/** Mailbox addresses of one or more address fields (groups flattened, invalid entries dropped). */
export function addressesOf(fields: readonly HeaderField[]): string[] {
  const out: string[] = [];
  for (const f of fields) {
    for (const a of addressparser(fieldValue(f), { flatten: true })) {
      const address = (a.address ?? '').trim();
      if (isPlausibleAddress(address)) out.push(address);
    }
  }
  return out;
}

function dedupe(addresses: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const a of addresses) {
    const k = a.toLowerCase();
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(a);
  }
  return out;
}

const nonAscii = (s: string): boolean => /[^\x00-\x7f]/.test(s);

function addMissing(fields: HeaderField[], ctx: ParseContext): void {
  if (!fields.some((f) => isField(f, 'Message-ID') && fieldValue(f).length > 2)) {
    const i = fields.findIndex((f) => isField(f, 'Message-ID'));
    if (i >= 0) fields.splice(i, 1);
    fields.push({ name: 'Message-ID', raw: `Message-ID: <${ctx.uniqueId}@${ctx.fqdn}>\r\n` });
  }
  const date = fields.find((f) => isField(f, 'Date'));
  if (!date || Number.isNaN(Date.parse(fieldValue(date).replace(/\([^)]*\)/g, '')))) {
    if (date) fields.splice(fields.indexOf(date), 1);
    fields.push({ name: 'Date', raw: `Date: ${formatMailDate(ctx.now)}\r\n` });
  }
}

/** UTF-8 when the bytes decode as UTF-8, else Latin-1 (which keeps every byte as it is). */
function headerEncoding(block: Buffer): 'utf8' | 'latin1' {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(block);
    return 'utf8';
  } catch {
    return 'latin1';
  }
}

/** Parses the head of a pickup or replay file (at least headBytesNeeded bytes, or the whole file). */
export function parsePickupFile(head: Buffer, ctx: ParseContext): ParsedPickupFile {
  const limit = ctx.kind === 'pickup' ? ctx.limits.maxHeaderSize : REPLAY_MAX_HEADER;
  let split = findHeaderEnd(head, Math.min(head.length, limit + 2));
  if (!split) {
    if (ctx.fileSize > limit) return { ok: false, reason: `header block larger than ${limit} bytes or no empty line after the headers` };
    // The whole file is a header block without a body.
    const whole = head.subarray(0, ctx.fileSize);
    split = { headerEnd: whole.length, bodyStart: whole.length };
  }
  if (split.headerEnd > limit) return { ok: false, reason: `header block larger than ${limit} bytes` };
  const block = head.subarray(0, split.headerEnd);
  if (block.includes(0)) return { ok: false, reason: 'NUL bytes in the header block (not a text message)' };
  if (split.headerEnd === 0) return { ok: false, reason: 'no header fields (not a mail message)' };
  const encoding = headerEncoding(block);
  const text = block.toString(encoding);
  const parsed = parseHeaderFields(text.endsWith('\n') ? text : `${text}\r\n`);
  if (!parsed) return { ok: false, reason: 'not a mail message: a line in the header block is not a header field' };

  let fields: HeaderField[];
  let envelope: Envelope;
  let receivedFrom = 'localhost';
  if (ctx.kind === 'replay') {
    const env = parseEnvelopeHeaders(parsed);
    if (!env.ok) return { ok: false, reason: env.reason };
    const createdBy = env.injected.find((f) => isField(f, 'X-CreatedBy'));
    const trusted = createdBy !== undefined && /^(MSExchange\d+|Mailyard)$/i.test(fieldValue(createdBy));
    const helo = env.injected.find((f) => isField(f, 'X-HeloDomain'));
    if (helo && /^[A-Za-z0-9.\-[\]:]+$/.test(fieldValue(helo))) receivedFrom = fieldValue(helo);
    fields = env.rest.filter((f) => !isField(f, 'Bcc') && (trusted || !isFirewalledHeader(f.name)));
    const smtputf8 = env.envelope.smtputf8 || nonAscii(env.envelope.mailFrom ?? '') || env.envelope.recipients.some((r) => nonAscii(r.address));
    envelope = { ...env.envelope, smtputf8, body: env.envelope.body === '7BIT' && ctx.eightBit ? '8BITMIME' : env.envelope.body };
  } else {
    const senderFields = parsed.filter((f) => isField(f, 'Sender'));
    const fromAddrs = addressesOf(parsed.filter((f) => isField(f, 'From')));
    const senderAddrs = addressesOf(senderFields);
    const to = addressesOf(parsed.filter((f) => isField(f, 'To') || isField(f, 'Cc')));
    const bcc = addressesOf(parsed.filter((f) => isField(f, 'Bcc')));
    const recipients = dedupe([...to, ...bcc]);
    let sender: string | undefined;
    if (senderAddrs.length > 1) return { ok: false, reason: 'Sender holds more than one address', recipients };
    if (senderAddrs.length === 1) sender = senderAddrs[0];
    else if (fromAddrs.length === 1) sender = fromAddrs[0];
    else if (fromAddrs.length > 1) return { ok: false, reason: 'From holds several addresses and there is no Sender', recipients };
    if (!sender) return { ok: false, reason: 'no sender address in From or Sender', recipients };
    if (recipients.length === 0) return { ok: false, reason: 'no recipient address in To, Cc or Bcc', sender };
    if (recipients.length > ctx.limits.maxRecipients) {
      return { ok: false, reason: `${recipients.length} recipients, more than the limit of ${ctx.limits.maxRecipients}`, sender, recipients };
    }
    fields = parsed.filter(
      (f) => !isField(f, 'Bcc') && !isField(f, 'Received') && !f.name.toLowerCase().startsWith('resent-') && !isFirewalledHeader(f.name),
    );
    if (to.length === 0) fields.push({ name: 'To', raw: 'To: Undisclosed recipients:;\r\n' });
    envelope = {
      mailFrom: sender,
      recipients: recipients.map((address): Recipient => ({ address })),
      body: ctx.eightBit ? '8BITMIME' : '7BIT',
      smtputf8: nonAscii(sender) || recipients.some(nonAscii),
    };
  }
  addMissing(fields, ctx);
  const subject = fields.find((f) => isField(f, 'Subject'));
  const mid = fields.find((f) => isField(f, 'Message-ID'));
  const via = ctx.kind === 'pickup' ? 'Pickup' : 'Replay';
  return {
    ok: true,
    envelope,
    header: `${joinFields(fields)}\r\n`,
    headerEncoding: encoding,
    bodyOffset: split.bodyStart,
    received: `Received: from ${receivedFrom} by ${ctx.fqdn} with Mailyard ${via};\r\n ${formatMailDate(ctx.now)}\r\n`,
    ...(subject ? { subject: fieldValue(subject) } : {}),
    ...(mid ? { internetMessageId: fieldValue(mid) } : {}),
  };
}
