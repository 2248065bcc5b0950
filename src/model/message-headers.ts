/**
 * Header-block helpers shared by the file-based paths (Drop directory, Pickup, Replay, queue export):
 * splitting a message into header fields, the header firewall (organization/forest headers), and the
 * Replay-format envelope lines `X-Sender:` / `X-Receiver:` that precede the message's own headers.
 * Pure: strings and buffers in, values out.
 *
 * Envelope line format (reference 8.3):
 *   X-Sender: <bob@fabrikam.com> BODY=8BITMIME RET=HDRS ENVID=12345 SMTPUTF8
 *   X-Receiver: <mary@contoso.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;mary@contoso.com
 * `X-Sender: <>` is the null sender. Parameters are optional and case-insensitive when read.
 */
import type { DsnNotify, Envelope, Recipient } from './envelope.js';

export interface HeaderField {
  /** The field name as written (case preserved). */
  readonly name: string;
  /** The whole field: first line, continuation lines and their line ends, exactly as in the input. */
  readonly raw: string;
}

/** Where the header block ends: `headerEnd` is the offset after the last header line's terminator. */
export interface HeaderSplit {
  readonly headerEnd: number;
  /** Offset of the first body byte (after the empty line), equal to the buffer length when there is no body. */
  readonly bodyStart: number;
}

/**
 * Finds the empty line between header and body (CRLF or LF, whichever comes first). Searches at
 * most `limit` bytes; returns undefined when no empty line is found within it. Jumps from line end
 * to line end, so a message costs its header's lines, never a scan of its body.
 */
export function findHeaderEnd(buf: Buffer, limit = buf.length): HeaderSplit | undefined {
  const end = Math.min(limit, buf.length);
  if (end > 0 && buf[0] === 0x0a) return { headerEnd: 0, bodyStart: 1 };
  if (end > 1 && buf[0] === 0x0d && buf[1] === 0x0a) return { headerEnd: 0, bodyStart: 2 };
  for (let i = buf.indexOf(0x0a); i >= 0 && i < end; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a && i + 1 < end) return { headerEnd: i + 1, bodyStart: i + 2 };
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a && i + 2 < end) return { headerEnd: i + 1, bodyStart: i + 3 };
  }
  return undefined;
}

const FIELD_NAME = /^([!-9;-~]+)[ \t]*:/;

/**
 * Splits a header block into fields. Returns undefined when a line is neither a field nor a
 * continuation (the text is not a mail header), or when the block starts with a continuation.
 */
export function parseHeaderFields(block: string): HeaderField[] | undefined {
  const fields: { name: string; raw: string }[] = [];
  const lines = block.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  for (const line of lines) {
    if (line === '\r\n' || line === '\n') return undefined;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      const last = fields[fields.length - 1];
      if (!last) return undefined;
      last.raw += line;
      continue;
    }
    const m = FIELD_NAME.exec(line);
    if (!m) return undefined;
    fields.push({ name: m[1]!, raw: line });
  }
  return fields;
}

/** The unfolded value of a field (after the colon, continuation line breaks removed, trimmed). */
export function fieldValue(field: HeaderField): string {
  const colon = field.raw.indexOf(':');
  return field.raw.slice(colon + 1).replace(/\r?\n(?=[ \t])/g, '').replace(/\r?\n$/, '').trim();
}

/** Field names compared case-insensitively. */
export function isField(field: HeaderField, name: string): boolean {
  return field.name.toLowerCase() === name.toLowerCase();
}

/**
 * The header firewall: organization and forest headers are trusted only inside the organization
 * and are removed when a message leaves it or enters it from an untrusted source.
 */
export function isFirewalledHeader(name: string): boolean {
  const n = name.toLowerCase();
  return (
    n.startsWith('x-ms-exchange-organization-') ||
    n.startsWith('x-ms-exchange-forest-') ||
    n.startsWith('x-mailyard-organization-') ||
    n.startsWith('x-mailyard-forest-')
  );
}

/** Joins fields back into a block, with `eol` normalising every line end. */
export function joinFields(fields: readonly HeaderField[], eol: '\r\n' | '\n' = '\r\n'): string {
  return fields
    .map((f) => {
      const text = f.raw.replace(/\r?\n/g, eol);
      return text.endsWith(eol) ? text : text + eol;
    })
    .join('');
}

function angle(address: string | null): string {
  return `<${address ?? ''}>`;
}

/** The X-Sender / X-Receiver lines (CRLF) for an envelope, in the Replay directory format. */
export function formatEnvelopeHeaders(envelope: Envelope, recipients: readonly Recipient[] = envelope.recipients): string {
  const senderParams: string[] = [];
  if (envelope.body !== '7BIT') senderParams.push(`BODY=${envelope.body}`);
  if (envelope.ret) senderParams.push(`RET=${envelope.ret}`);
  if (envelope.envid) senderParams.push(`ENVID=${xtext(envelope.envid)}`);
  if (envelope.smtputf8) senderParams.push('SMTPUTF8');
  let out = `X-Sender: ${[angle(envelope.mailFrom), ...senderParams].join(' ')}\r\n`;
  for (const r of recipients) {
    const params: string[] = [];
    if (r.notify) params.push(`NOTIFY=${r.notify.length === 0 ? 'NEVER' : r.notify.join(',')}`);
    if (r.orcpt) params.push(`ORCPT=${xtext(r.orcpt)}`);
    out += `X-Receiver: ${[angle(r.address), ...params].join(' ')}\r\n`;
  }
  return out;
}

/** RFC 3461 xtext: '+', '=', controls and space become +HH. */
function xtext(value: string): string {
  return value.replace(/[^!-*,-<>-~]/g, (c) => `+${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function unxtext(value: string): string {
  return value.replace(/\+([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** Names of the injected header block a Replay file may start with (reference 8.3). */
export const REPLAY_X_HEADERS = [
  'x-sender',
  'x-receiver',
  'x-createdby',
  'x-endofinjectedxheaders',
  'x-extendedmessageprops',
  'x-helodomain',
  'x-source',
  'x-sourceipaddress',
];

export type EnvelopeHeadersResult =
  | { readonly ok: true; readonly envelope: Envelope; readonly injected: readonly HeaderField[]; readonly rest: readonly HeaderField[] }
  | { readonly ok: false; readonly reason: string };

function parsePath(value: string): { address: string | null; params: Map<string, string> } | undefined {
  const m = /^<([^<>]*)>(.*)$/.exec(value.trim()) ?? /^([^\s<>]+)(.*)$/.exec(value.trim());
  if (!m) return undefined;
  const address = m[1]!.trim();
  if (/[\s\u0000-\u001f]/.test(address)) return undefined;
  const params = new Map<string, string>();
  for (const p of (m[2] ?? '').trim().split(/\s+/).filter(Boolean)) {
    const eq = p.indexOf('=');
    params.set((eq < 0 ? p : p.slice(0, eq)).toUpperCase(), eq < 0 ? '' : p.slice(eq + 1));
  }
  return { address: address === '' ? null : address, params };
}

/**
 * Reads the envelope from the leading X-header block of a Replay-format file. The injected block is
 * the leading run of fields named in REPLAY_X_HEADERS; `rest` are the message's own headers.
 */
export function parseEnvelopeHeaders(fields: readonly HeaderField[]): EnvelopeHeadersResult {
  let n = 0;
  while (n < fields.length && REPLAY_X_HEADERS.includes(fields[n]!.name.toLowerCase())) n++;
  const injected = fields.slice(0, n);
  const rest = fields.slice(n);
  const senders = injected.filter((f) => isField(f, 'X-Sender'));
  if (senders.length !== 1) return { ok: false, reason: senders.length === 0 ? 'no X-Sender header before the message headers' : 'more than one X-Sender header' };
  const sender = parsePath(fieldValue(senders[0]!));
  if (!sender) return { ok: false, reason: 'unreadable X-Sender header' };
  const recipients: Recipient[] = [];
  const seen = new Set<string>();
  for (const f of injected.filter((x) => isField(x, 'X-Receiver'))) {
    const r = parsePath(fieldValue(f));
    if (!r || r.address === null || !r.address.includes('@')) return { ok: false, reason: `unreadable X-Receiver header: ${fieldValue(f).slice(0, 80)}` };
    if (seen.has(r.address.toLowerCase())) continue;
    seen.add(r.address.toLowerCase());
    const notifyText = r.params.get('NOTIFY');
    let notify: DsnNotify[] | undefined;
    if (notifyText !== undefined) {
      notify = notifyText.toUpperCase() === 'NEVER' ? [] : (notifyText.toUpperCase().split(',').filter((x) => x === 'SUCCESS' || x === 'FAILURE' || x === 'DELAY') as DsnNotify[]);
    }
    const orcpt = r.params.get('ORCPT');
    recipients.push({ address: r.address, ...(notify ? { notify } : {}), ...(orcpt ? { orcpt: unxtext(orcpt) } : {}) });
  }
  if (recipients.length === 0) return { ok: false, reason: 'no X-Receiver header before the message headers' };
  const bodyParam = sender.params.get('BODY')?.toUpperCase();
  const ret = sender.params.get('RET')?.toUpperCase();
  const envid = sender.params.get('ENVID');
  const envelope: Envelope = {
    mailFrom: sender.address,
    recipients,
    body: bodyParam === '8BITMIME' || bodyParam === 'BINARYMIME' ? bodyParam : '7BIT',
    smtputf8: sender.params.has('SMTPUTF8'),
    ...(ret === 'FULL' || ret === 'HDRS' ? { ret } : {}),
    ...(envid ? { envid: unxtext(envid) } : {}),
  };
  return { ok: true, envelope, injected, rest };
}
