/**
 * RFC 6152 downgrade: turns an 8-bit MIME message into a 7-bit one for a next hop that does not
 * offer 8BITMIME. Pure (bytes in, bytes out, no I/O), for messages of any size: the result is a
 * list of chunks (`downgrade8bitChunks`) that reuses slices of the input for everything that is
 * copied unchanged, so converting a message costs its encoded parts in memory plus the input,
 * never an extra copy of the whole message (`downgrade8bit` joins the chunks for small ones).
 *
 * What it does: walks the MIME tree (top-level entity, multipart/* parts recursively by their
 * boundary) and re-encodes every leaf body that holds bytes ≥ 0x80 — text/* as quoted-printable,
 * everything else as base64 — and sets its Content-Transfer-Encoding to match. Entities that are
 * already 7-bit are copied byte for byte, so a downgraded message differs from the original only
 * in the parts that had to change. Decoding a converted part gives back exactly the original bytes
 * (a text part's line breaks become CRLF, which is what they are on the wire anyway). Every line
 * the converter writes is short (quoted-printable and base64 lines ≤ 76 characters, CRLF); lines
 * copied unchanged are as long as they were. Dot-stuffing is not done here (the sender does it).
 *
 * What it refuses (ok:false, the caller bounces): 8-bit bytes in any header block (that needs
 * SMTPUTF8 or RFC 2047 rewriting, not done here), in a multipart preamble or epilogue, in a
 * message/* part (RFC 2046 forbids encoding those), in a multipart without a usable boundary, or
 * in a body already labelled quoted-printable/base64 or with an unknown transfer encoding.
 */

export type DowngradeResult = { readonly ok: true; readonly message: Buffer } | { readonly ok: false; readonly reason: string };

const CR = 0x0d;
const LF = 0x0a;

/** Multipart nesting deeper than this is refused (bounded recursion). */
const MAX_DEPTH = 50;

/** Longest quoted-printable line, soft-break "=" included (RFC 2045 §6.7). */
const QP_LINE = 76;
const BASE64_LINE = 76;

class Refused extends Error {}

function has8bit(buf: Buffer, from = 0, to = buf.length): boolean {
  for (let i = from; i < to; i++) if (buf[i]! >= 0x80) return true;
  return false;
}

export type DowngradeChunks =
  | { readonly ok: true; readonly chunks: readonly Buffer[]; readonly length: number }
  | { readonly ok: false; readonly reason: string };

/**
 * Converts a whole message (header block, empty line, body). Returns the input itself when it
 * holds no byte ≥ 0x80.
 */
export function downgrade8bit(message: Buffer): DowngradeResult {
  const r = downgrade8bitChunks(message);
  if (!r.ok) return r;
  const only = r.chunks[0];
  return { ok: true, message: r.chunks.length === 1 && only ? only : Buffer.concat(r.chunks, r.length) };
}

/**
 * Like `downgrade8bit`, as a list of chunks whose concatenation is the converted message (the
 * input itself as the only chunk when it holds no byte ≥ 0x80). Unchanged regions are slices of
 * the input, so the input must not be modified while the chunks are in use.
 */
export function downgrade8bitChunks(message: Buffer): DowngradeChunks {
  if (!has8bit(message)) return { ok: true, chunks: [message], length: message.length };
  const out: Buffer[] = [];
  try {
    convertEntity(message, 0, true, 'text/plain', out);
  } catch (err) {
    if (err instanceof Refused) return { ok: false, reason: err.message };
    throw err;
  }
  let length = 0;
  for (const c of out) length += c.length;
  return { ok: true, chunks: out, length };
}

/** Index just past the header block's last line break (0 when the entity starts with an empty line), or -1. */
function headerEnd(buf: Buffer): number {
  if (buf[0] === LF || (buf[0] === CR && buf[1] === LF)) return 0;
  for (let lf = buf.indexOf(LF); lf !== -1; lf = buf.indexOf(LF, lf + 1)) {
    const next = buf[lf + 1];
    if (next === LF || (next === CR && buf[lf + 2] === LF)) return lf + 1;
  }
  return -1;
}

interface HeaderField {
  /** Lower-case field name. */
  readonly name: string;
  /** Unfolded value, trimmed. */
  readonly value: string;
  /** The field's raw text, folded lines and final line break included. */
  readonly raw: string;
}

function parseHeader(text: string): HeaderField[] {
  const fields: HeaderField[] = [];
  const lines = text.split(/(?<=\n)/);
  let current: string[] = [];
  const flush = () => {
    if (current.length === 0) return;
    const raw = current.join('');
    const colon = raw.indexOf(':');
    const name = colon > 0 ? raw.slice(0, colon).trim().toLowerCase() : '';
    const value = colon > 0 ? raw.slice(colon + 1).replace(/\r?\n/g, '').trim() : '';
    fields.push({ name, value, raw });
    current = [];
  };
  for (const line of lines) {
    if (line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && current.length > 0) current.push(line);
    else {
      flush();
      current.push(line);
    }
  }
  flush();
  return fields;
}

interface ContentType {
  /** "type/subtype", lower case. */
  readonly mediaType: string;
  readonly params: ReadonlyMap<string, string>;
}

/** Parses a Content-Type value: media type and parameters (token or quoted-string values). */
function parseContentType(value: string): ContentType {
  const noComments = value.replace(/\((?:[^()\\"]|\\.)*\)/g, ' ');
  const semi = noComments.search(/;|$/);
  const mediaType = noComments.slice(0, semi).trim().toLowerCase();
  const params = new Map<string, string>();
  const re = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*))/g;
  const rest = noComments.slice(semi);
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    const quoted = m[2];
    params.set(m[1]!.toLowerCase(), quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (m[3] ?? ''));
  }
  return { mediaType, params };
}

/** Converts one entity (header + body), appending the result to out; throws Refused. */
function convertEntity(entity: Buffer, depth: number, topLevel: boolean, defaultType: string, out: Buffer[]): void {
  let end = headerEnd(entity);
  if (end < 0) end = entity.length;
  if (has8bit(entity, 0, end)) throw new Refused('8-bit bytes in a header field');
  // The body starts after the empty line that ends the header block.
  let bodyStart = end;
  if (entity[bodyStart] === CR && entity[bodyStart + 1] === LF) bodyStart += 2;
  else if (entity[bodyStart] === LF) bodyStart += 1;
  if (!has8bit(entity, bodyStart)) {
    out.push(entity);
    return;
  }

  const headerText = entity.toString('latin1', 0, end);
  const fields = parseHeader(headerText);
  const ctField = fields.find((f) => f.name === 'content-type');
  const ct = ctField ? parseContentType(ctField.value) : parseContentType(defaultType);
  const mediaType = ct.mediaType.includes('/') ? ct.mediaType : 'text/plain';
  const body = entity.subarray(bodyStart);

  if (mediaType.startsWith('multipart/')) {
    if (depth >= MAX_DEPTH) throw new Refused('multipart nesting too deep');
    const boundary = ct.params.get('boundary');
    if (!boundary) throw new Refused('8-bit multipart without a boundary');
    const childDefault = mediaType === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    out.push(entity.subarray(0, bodyStart));
    convertMultipartBody(body, boundary, depth + 1, childDefault, out);
    return;
  }
  if (mediaType.startsWith('message/')) throw new Refused(`8-bit ${mediaType} part cannot be re-encoded`);

  const cte = (fields.find((f) => f.name === 'content-transfer-encoding')?.value ?? '7bit').toLowerCase();
  if (cte !== '7bit' && cte !== '8bit' && cte !== 'binary') throw new Refused(`8-bit bytes in a body labelled ${cte}`);

  const text = mediaType.startsWith('text/');
  const kept = fields.filter((f) => f.name !== 'content-transfer-encoding');
  let header = kept.map((f) => f.raw).join('');
  if (header.length > 0 && !header.endsWith('\n')) header += '\r\n';
  if (topLevel && !fields.some((f) => f.name === 'mime-version')) header += 'MIME-Version: 1.0\r\n';
  header += `Content-Transfer-Encoding: ${text ? 'quoted-printable' : 'base64'}\r\n`;
  out.push(Buffer.from(header + '\r\n', 'latin1'));
  const w = new ChunkWriter(out, text ? qpBound(body.length) : base64Bound(body.length));
  if (text) writeQuotedPrintable(body, w);
  else writeBase64(body, topLevel, w);
  w.finish();
}

/** Start, end of content and start of the next line, for every line of buf. */
function* lines(buf: Buffer): Generator<{ start: number; contentEnd: number; next: number }> {
  let start = 0;
  while (start < buf.length) {
    const lf = buf.indexOf(LF, start);
    if (lf < 0) {
      yield { start, contentEnd: buf.length, next: buf.length };
      return;
    }
    yield { start, contentEnd: lf > start && buf[lf - 1] === CR ? lf - 1 : lf, next: lf + 1 };
    start = lf + 1;
  }
}

/** The length of the line break that ends region (the one belonging to the next delimiter). */
function trailingBreak(region: Buffer): number {
  const n = region.length;
  if (n >= 2 && region[n - 2] === CR && region[n - 1] === LF) return 2;
  if (n >= 1 && region[n - 1] === LF) return 1;
  return 0;
}

function convertMultipartBody(body: Buffer, boundary: string, depth: number, childDefault: string, out: Buffer[]): void {
  const open = `--${boundary}`;
  const close = `--${boundary}--`;
  // Delimiter lines: [line start, next line start, closing?]
  const delims: { start: number; next: number; closing: boolean }[] = [];
  for (const l of lines(body)) {
    // Only lines starting with "--" can be delimiters; a quick check before decoding the line.
    if (body[l.start] !== 0x2d || body[l.start + 1] !== 0x2d) continue;
    const line = body.toString('latin1', l.start, l.contentEnd).replace(/[ \t]+$/, '');
    if (line === close) {
      delims.push({ start: l.start, next: l.next, closing: true });
      break;
    }
    if (line === open) delims.push({ start: l.start, next: l.next, closing: false });
  }
  const first = delims[0];
  if (!first || first.closing) throw new Refused('8-bit multipart whose boundary never occurs');
  if (has8bit(body, 0, first.start)) throw new Refused('8-bit bytes in a multipart preamble');

  out.push(body.subarray(0, first.next));
  for (let i = 0; i < delims.length; i++) {
    const d = delims[i]!;
    if (d.closing) break;
    const nextDelim = delims[i + 1];
    const region = body.subarray(d.next, nextDelim ? nextDelim.start : body.length);
    // The line break before the next delimiter belongs to the delimiter, not to the part.
    const brk = nextDelim ? trailingBreak(region) : 0;
    const part = region.subarray(0, region.length - brk);
    convertEntity(part, depth, false, childDefault, out);
    out.push(region.subarray(region.length - brk));
    if (nextDelim) out.push(body.subarray(nextDelim.start, nextDelim.next));
  }
  const last = delims[delims.length - 1]!;
  if (last.closing) {
    if (has8bit(body, last.next)) throw new Refused('8-bit bytes in a multipart epilogue');
    out.push(body.subarray(last.next));
  }
}

/** Output chunk size of the encoders. */
const CHUNK = 64 * 1024;

/**
 * Appends bytes to a list of chunks of at most `CHUNK` bytes (fewer when the caller knows the
 * output is small), so that encoding a large part never builds one string or buffer of it all.
 */
class ChunkWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(
    private readonly out: Buffer[],
    sizeHint: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(16, Math.min(CHUNK, sizeHint)));
  }

  /** Room for n more bytes (n ≤ 16) in the current chunk. */
  room(n: number): void {
    if (this.pos + n > this.buf.length) {
      this.out.push(this.buf.subarray(0, this.pos));
      this.buf = Buffer.allocUnsafe(CHUNK);
      this.pos = 0;
    }
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  /** Latin-1 text; long text is written across chunks. */
  text(s: string): void {
    let i = 0;
    while (i < s.length) {
      if (this.pos === this.buf.length) this.room(1);
      const n = this.buf.write(s.slice(i, i + (this.buf.length - this.pos)), this.pos, 'latin1');
      this.pos += n;
      i += n;
    }
  }

  finish(): void {
    if (this.pos === 0) return;
    // A mostly empty chunk is copied rather than kept whole.
    this.out.push(this.pos * 2 < this.buf.length ? Buffer.from(this.buf.subarray(0, this.pos)) : this.buf.subarray(0, this.pos));
    this.pos = 0;
  }
}

/** Upper bound of the quoted-printable size of n bytes: 3 per byte plus a soft break per 73 characters. */
function qpBound(n: number): number {
  return 3 * n + 3 * Math.ceil((3 * n) / 73) + 3;
}

function base64Bound(n: number): number {
  const chars = 4 * Math.ceil(n / 3);
  return chars + 2 * Math.ceil(chars / BASE64_LINE) + 2;
}

const HEX = Buffer.from('0123456789ABCDEF', 'latin1');
const EQ = 0x3d;

/** Bytes that quoted-printable may leave as they are (space and tab only when not ending a line). */
const QP_LITERAL = new Uint8Array(256);
for (let b = 0x21; b <= 0x7e; b++) QP_LITERAL[b] = b === EQ ? 0 : 1;

/**
 * Quoted-printable (RFC 2045 §6.7) for text: every line break (CRLF, or a bare LF) is a hard
 * break written as CRLF; "=", controls and bytes ≥ 0x80 become =XX, as do a space or tab that
 * would end a line; soft breaks keep every line at most 76 characters.
 */
export function encodeQuotedPrintable(body: Buffer): Buffer {
  const out: Buffer[] = [];
  const w = new ChunkWriter(out, qpBound(body.length));
  writeQuotedPrintable(body, w);
  w.finish();
  return out.length === 1 ? out[0]! : Buffer.concat(out);
}

function writeQuotedPrintable(body: Buffer, w: ChunkWriter): void {
  for (const l of lines(body)) {
    let lineLength = 0;
    const end = l.contentEnd;
    for (let i = l.start; i < end; i++) {
      const b = body[i]!;
      const last = i === end - 1;
      const literal = QP_LITERAL[b] === 1 || ((b === 0x20 || b === 0x09) && !last);
      const size = literal ? 1 : 3;
      // Keep room for the soft break "=" unless this token ends the line.
      const limit = last ? QP_LINE : QP_LINE - 1;
      if (lineLength + size > limit) {
        w.room(3);
        w.byte(EQ);
        w.byte(CR);
        w.byte(LF);
        lineLength = 0;
      }
      w.room(size);
      if (literal) w.byte(b);
      else {
        w.byte(EQ);
        w.byte(HEX[b >> 4]!);
        w.byte(HEX[b & 15]!);
      }
      lineLength += size;
    }
    if (l.next > l.contentEnd) {
      w.room(2);
      w.byte(CR);
      w.byte(LF);
    }
  }
}

/** Base64 in lines of 76 characters joined by CRLF; a final CRLF when asked. */
export function encodeBase64(body: Buffer, finalBreak: boolean): Buffer {
  const out: Buffer[] = [];
  const w = new ChunkWriter(out, base64Bound(body.length));
  writeBase64(body, finalBreak, w);
  w.finish();
  return out.length === 1 ? out[0]! : out.length === 0 ? Buffer.alloc(0) : Buffer.concat(out);
}

/** Input bytes per base64 line (57 bytes → 76 characters). */
const BASE64_LINE_BYTES = (BASE64_LINE / 4) * 3;
/** Input bytes encoded at a time: a whole number of lines. */
const BASE64_SLAB = BASE64_LINE_BYTES * 1024;

function writeBase64(body: Buffer, finalBreak: boolean, w: ChunkWriter): void {
  for (let i = 0; i < body.length; i += BASE64_SLAB) {
    const b64 = body.toString('base64', i, Math.min(body.length, i + BASE64_SLAB));
    for (let k = 0; k < b64.length; k += BASE64_LINE) {
      if (i > 0 || k > 0) w.text('\r\n');
      w.text(b64.slice(k, k + BASE64_LINE));
    }
  }
  if (finalBreak && body.length > 0) w.text('\r\n');
}
