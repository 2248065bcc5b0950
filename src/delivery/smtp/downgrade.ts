/**
 * RFC 6152 downgrade: turns an 8-bit MIME message into a 7-bit one for a next hop that does not
 * offer 8BITMIME. Pure (bytes in, bytes out, no I/O).
 *
 * What it does: walks the MIME tree (top-level entity, multipart/* parts recursively by their
 * boundary) and re-encodes every leaf body that holds bytes ≥ 0x80 — text/* as quoted-printable,
 * everything else as base64 — and sets its Content-Transfer-Encoding to match. Entities that are
 * already 7-bit are copied byte for byte, so a downgraded message differs from the original only
 * in the parts that had to change. Decoding a converted part gives back exactly the original bytes
 * (a text part's line breaks become CRLF, which is what they are on the wire anyway).
 *
 * What it refuses (ok:false, the caller bounces): 8-bit bytes in any header block (that needs
 * SMTPUTF8 or RFC 2047 rewriting, not done here), in a multipart preamble or epilogue, in a
 * message/* part (RFC 2046 forbids encoding those), in a multipart without a usable boundary, or
 * in a body already labelled quoted-printable/base64 or with an unknown transfer encoding.
 */

export type DowngradeResult = { readonly ok: true; readonly message: Buffer } | { readonly ok: false; readonly reason: string };

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n', 'latin1');

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

/**
 * Converts a whole message (header block, empty line, body). Returns the input itself when it
 * holds no byte ≥ 0x80.
 */
export function downgrade8bit(message: Buffer): DowngradeResult {
  if (!has8bit(message)) return { ok: true, message };
  try {
    return { ok: true, message: convertEntity(message, 0, true) };
  } catch (err) {
    if (err instanceof Refused) return { ok: false, reason: err.message };
    throw err;
  }
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

/** Converts one entity (header + body); throws Refused. */
function convertEntity(entity: Buffer, depth: number, topLevel: boolean, defaultType = 'text/plain'): Buffer {
  let end = headerEnd(entity);
  if (end < 0) end = entity.length;
  if (has8bit(entity, 0, end)) throw new Refused('8-bit bytes in a header field');
  // The body starts after the empty line that ends the header block.
  let bodyStart = end;
  if (entity[bodyStart] === CR && entity[bodyStart + 1] === LF) bodyStart += 2;
  else if (entity[bodyStart] === LF) bodyStart += 1;
  if (!has8bit(entity, bodyStart)) return entity;

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
    return Buffer.concat([entity.subarray(0, bodyStart), convertMultipartBody(body, boundary, depth + 1, childDefault)]);
  }
  if (mediaType.startsWith('message/')) throw new Refused(`8-bit ${mediaType} part cannot be re-encoded`);

  const cte = (fields.find((f) => f.name === 'content-transfer-encoding')?.value ?? '7bit').toLowerCase();
  if (cte !== '7bit' && cte !== '8bit' && cte !== 'binary') throw new Refused(`8-bit bytes in a body labelled ${cte}`);

  const text = mediaType.startsWith('text/');
  const encoded = text ? encodeQuotedPrintable(body) : encodeBase64(body, topLevel);
  const kept = fields.filter((f) => f.name !== 'content-transfer-encoding');
  let header = kept.map((f) => f.raw).join('');
  if (header.length > 0 && !header.endsWith('\n')) header += '\r\n';
  if (topLevel && !fields.some((f) => f.name === 'mime-version')) header += 'MIME-Version: 1.0\r\n';
  header += `Content-Transfer-Encoding: ${text ? 'quoted-printable' : 'base64'}\r\n`;
  return Buffer.concat([Buffer.from(header, 'latin1'), CRLF, encoded]);
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

function convertMultipartBody(body: Buffer, boundary: string, depth: number, childDefault: string): Buffer {
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

  const out: Buffer[] = [body.subarray(0, first.next)];
  for (let i = 0; i < delims.length; i++) {
    const d = delims[i]!;
    if (d.closing) break;
    const nextDelim = delims[i + 1];
    const region = body.subarray(d.next, nextDelim ? nextDelim.start : body.length);
    // The line break before the next delimiter belongs to the delimiter, not to the part.
    const brk = nextDelim ? trailingBreak(region) : 0;
    const part = region.subarray(0, region.length - brk);
    out.push(convertEntity(part, depth, false, childDefault), region.subarray(region.length - brk));
    if (nextDelim) out.push(body.subarray(nextDelim.start, nextDelim.next));
  }
  const last = delims[delims.length - 1]!;
  if (last.closing) {
    if (has8bit(body, last.next)) throw new Refused('8-bit bytes in a multipart epilogue');
    out.push(body.subarray(last.next));
  }
  return Buffer.concat(out);
}

const HEX = '0123456789ABCDEF';

/**
 * Quoted-printable (RFC 2045 §6.7) for text: every line break (CRLF, or a bare LF) is a hard
 * break written as CRLF; "=", controls and bytes ≥ 0x80 become =XX, as do a space or tab that
 * would end a line; soft breaks keep every line at most 76 characters.
 */
export function encodeQuotedPrintable(body: Buffer): Buffer {
  const out: string[] = [];
  for (const l of lines(body)) {
    let line = '';
    const end = l.contentEnd;
    for (let i = l.start; i < end; i++) {
      const b = body[i]!;
      const last = i === end - 1;
      const literal = (b >= 0x21 && b <= 0x7e && b !== 0x3d) || ((b === 0x20 || b === 0x09) && !last);
      const token = literal ? String.fromCharCode(b) : `=${HEX[b >> 4]}${HEX[b & 15]}`;
      // Keep room for the soft break "=" unless this token ends the line.
      const limit = last ? QP_LINE : QP_LINE - 1;
      if (line.length + token.length > limit) {
        out.push(line, '=\r\n');
        line = '';
      }
      line += token;
    }
    out.push(line);
    if (l.next > l.contentEnd) out.push('\r\n');
  }
  return Buffer.from(out.join(''), 'latin1');
}

/** Base64 in lines of 76 characters joined by CRLF; a final CRLF when asked. */
export function encodeBase64(body: Buffer, finalBreak: boolean): Buffer {
  const b64 = body.toString('base64');
  const parts: string[] = [];
  for (let i = 0; i < b64.length; i += BASE64_LINE) parts.push(b64.slice(i, i + BASE64_LINE));
  return Buffer.from(parts.join('\r\n') + (finalBreak && parts.length > 0 ? '\r\n' : ''), 'latin1');
}
