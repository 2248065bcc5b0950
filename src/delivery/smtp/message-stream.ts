/**
 * Reading a spooled message for sending: the header block passes through the header firewall,
 * the body is left untouched. Two ways (a third for the rare 7-bit conversion, see the end):
 * - small messages (the common case) are read whole and turned into the exact bytes of the DATA
 *   phase here (`prepareData`): header firewall, every bare CR or LF made CRLF, dot-stuffed exactly
 *   once, "<CRLF>.<CRLF>" appended, so the session can write them in one go (one writev);
 * - large ones are streamed (`openMessage`) and the SMTP client (nodemailer's DataStream) does the
 *   CRLF normalisation and dot-stuffing, so that path must never dot-stuff itself.
 * `encodeDataChunks` produces, joined, byte for byte what DataStream produces, so no bare LF and no
 * "<LF>.<LF>" can reach the next hop either way.
 *
 * Also: a scan for 8-bit bytes, so a message labelled 8BITMIME/SMTPUTF8 that is in fact 7-bit
 * clean can still go to a hop that lacks those extensions; and, for a message that has to be
 * converted to 7 bit whatever its size, a bounded read of the whole file (`readMessageUpTo`) and a
 * stream over the converted chunks (`chunkStream`), which, like `openMessage`, leaves line ends and
 * dot-stuffing to nodemailer.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { applyHeaderFirewall, type HeaderFirewallPolicy } from '../header-firewall.js';
import { findHeaderEnd } from '../../model/message-headers.js';

/** Headers longer than this pass unfiltered (the receive side limits headers far below it). */
const MAX_HEADER_BYTES = 1024 * 1024;

/** A Transform that applies the header firewall to everything before the first empty line. */
export class HeaderFirewallStream extends Transform {
  private head: Buffer[] = [];
  private headLength = 0;
  private passing = false;
  /** Names of the header fields removed (known once the header block has been seen). */
  removed: readonly string[] = [];

  constructor(private readonly policy: HeaderFirewallPolicy) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.passing) {
      done(null, chunk);
      return;
    }
    this.head.push(chunk);
    this.headLength += chunk.length;
    const buf = Buffer.concat(this.head, this.headLength);
    const split = findHeaderEnd(buf);
    if (split) {
      this.flushHead(buf.subarray(0, split.headerEnd), buf.subarray(split.headerEnd));
    } else if (this.headLength > MAX_HEADER_BYTES) {
      this.passing = true;
      this.push(buf);
    }
    this.head = this.passing ? [] : [buf];
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.passing && this.headLength > 0) {
      // A message with headers only (no empty line): filter all of it.
      const buf = Buffer.concat(this.head, this.headLength);
      this.flushHead(buf, Buffer.alloc(0));
    }
    done();
  }

  private flushHead(header: Buffer, rest: Buffer): void {
    const filtered = applyHeaderFirewall(header.toString('latin1'), this.policy);
    this.removed = filtered.removed;
    this.passing = true;
    this.push(Buffer.from(filtered.headers, 'latin1'));
    if (rest.length) this.push(rest);
  }
}

/** Opens the spooled message with the header firewall applied. */
export function openMessage(bodyPath: string, policy: HeaderFirewallPolicy): { stream: HeaderFirewallStream; source: ReadStream } {
  const source = createReadStream(bodyPath, { highWaterMark: 64 * 1024 });
  const stream = new HeaderFirewallStream(policy);
  source.on('error', (err) => stream.destroy(err));
  // nodemailer destroys the message stream when the envelope fails: release the file as well.
  stream.on('close', () => source.destroy());
  source.pipe(stream);
  return { stream, source };
}

/** A header block that may hold organization or forest headers (never a false "no"). */
const MAYBE_FIREWALLED = /x-(?:mailyard|ms-exchange)-(?:organization|forest)-/i;

/**
 * The header firewall applied to a message held in memory. Returns the input itself when nothing
 * is removed (no copy).
 */
export function applyFirewallToBuffer(raw: Buffer, policy: HeaderFirewallPolicy): { message: Buffer; removed: readonly string[] } {
  if (policy.sendOrganizationHeaders && policy.sendRoutingHeaders !== false) return { message: raw, removed: [] };
  const end = findHeaderEnd(raw)?.headerEnd ?? raw.length;
  if (end === 0) return { message: raw, removed: [] };
  const header = raw.toString('latin1', 0, end);
  if (policy.sendRoutingHeaders !== false && !MAYBE_FIREWALLED.test(header)) return { message: raw, removed: [] };
  const filtered = applyHeaderFirewall(header, policy);
  if (filtered.removed.length === 0) return { message: raw, removed: [] };
  return { message: Buffer.concat([Buffer.from(filtered.headers, 'latin1'), raw.subarray(end)]), removed: filtered.removed };
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/**
 * The bytes to send after a 354: bare CR and bare LF become CRLF, a dot starting a line (also
 * after a bare CR) is doubled, and the "." line ends it. The same bytes nodemailer's DataStream
 * writes for the same input. Well-formed input (CRLF only, no line starting with a dot) costs a
 * native scan for line ends and no copy: it comes back as the input itself followed by the
 * terminator, to be written together (one writev).
 */
export function encodeDataChunks(src: Buffer): Buffer[] {
  const n = src.length;
  let clean = n === 0 || src[0] !== DOT;
  let lines = 0;
  for (let lf = clean ? src.indexOf(LF) : -1; lf !== -1; lf = src.indexOf(LF, lf + 1)) {
    if (lf === 0 || src[lf - 1] !== CR || src[lf + 1] === DOT) {
      clean = false;
      break;
    }
    lines++;
  }
  if (clean) {
    // Every LF has its CR; any other CR would be a bare one.
    let crs = 0;
    for (let cr = src.indexOf(CR); cr !== -1 && crs <= lines; cr = src.indexOf(CR, cr + 1)) crs++;
    clean = crs === lines;
  }
  if (clean) return [src, n > 0 && src[n - 1] === LF ? DOT_LINE : CRLF_DOT_LINE];
  // Worst case: every byte doubles, plus the terminator.
  const out = Buffer.allocUnsafe(2 * n + 5);
  let o = 0;
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const b = src[i]!;
    if (prev === CR && b !== LF) {
      out[o++] = LF;
      if (b === DOT) out[o++] = DOT;
    } else if (b === LF && prev !== CR) {
      out[o++] = CR;
    } else if (b === DOT && (prev === LF || prev === -1)) {
      out[o++] = DOT;
    }
    out[o++] = b;
    prev = b;
  }
  o += out.write(prev === LF ? '.\r\n' : prev === CR ? '\n.\r\n' : '\r\n.\r\n', o, 'latin1');
  return [Buffer.from(out.subarray(0, o))];
}

const DOT_LINE = Buffer.from('.\r\n');
const CRLF_DOT_LINE = Buffer.from('\r\n.\r\n');

/** The DATA bytes of a message held in memory: header firewall, then `encodeDataChunks`. */
export function prepareData(raw: Buffer, policy: HeaderFirewallPolicy): { data: Buffer[]; removed: readonly string[] } {
  const { message, removed } = applyFirewallToBuffer(raw, policy);
  return { data: encodeDataChunks(message), removed };
}

/** True when the buffer holds any byte ≥ 0x80. */
export function has8bit(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i]! >= 0x80) return true;
  return false;
}

/** True when the file holds any byte ≥ 0x80. */
export async function fileHas8bit(path: string): Promise<boolean> {
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    const buf = chunk as Buffer;
    for (let i = 0; i < buf.length; i++) if (buf[i]! >= 0x80) return true;
  }
  return false;
}

/**
 * The whole file when it is at most maxBytes long, undefined when it is longer (nothing beyond
 * the size check is read then). Rejects when the file cannot be read.
 */
export async function readMessageUpTo(path: string, maxBytes: number): Promise<Buffer | undefined> {
  const fh = await open(path, 'r');
  try {
    if ((await fh.stat()).size > maxBytes) return undefined;
    const buf = await fh.readFile();
    // The spool file does not grow while queued; this only guards the bound.
    return buf.length > maxBytes ? undefined : buf;
  } finally {
    await fh.close();
  }
}

/** A byte stream over chunks held in memory (the message as `Transaction.message`). */
export function chunkStream(chunks: readonly Buffer[]): Readable {
  return Readable.from(chunks, { objectMode: false });
}

/** RFC 3461 xtext: "+" followed by two hex digits for "+", "=" and bytes outside "!".."~". */
export function encodeXtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte < 0x21 || byte > 0x7e || byte === 0x2b || byte === 0x3d ? `+${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

/** Encodes as xtext unless the value already is valid xtext (as smtp-server hands ORCPT over). */
export function asXtext(value: string): string {
  const alreadyXtext = /^([\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/.test(value);
  return alreadyXtext ? value : encodeXtext(value);
}
