/**
 * Reading a spooled message for sending: the header block passes through the header firewall,
 * the body is streamed untouched. The SMTP client (nodemailer's DataStream) then normalises every
 * bare CR or LF to CRLF and dot-stuffs exactly once, so no bare LF and no "<LF>.<LF>" can reach
 * the next hop; this module must therefore never dot-stuff itself.
 *
 * Also: a scan for 8-bit bytes, so a message labelled 8BITMIME/SMTPUTF8 that is in fact 7-bit
 * clean can still go to a hop that lacks those extensions.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { applyHeaderFirewall, type HeaderFirewallPolicy } from '../header-firewall.js';

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
    const end = findHeaderEnd(buf);
    if (end >= 0) {
      this.flushHead(buf.subarray(0, end), buf.subarray(end));
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

/** Index just past the header block's last line (before the empty line), or -1. */
export function findHeaderEnd(buf: Buffer): number {
  if (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) return 0;
  if (buf.length >= 1 && buf[0] === 0x0a) return 0;
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return -1;
  if (crlf >= 0 && (lf < 0 || crlf + 1 <= lf)) return crlf + 2;
  return lf + 1;
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

/** True when the file holds any byte ≥ 0x80. */
export async function fileHas8bit(path: string): Promise<boolean> {
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    const buf = chunk as Buffer;
    for (let i = 0; i < buf.length; i++) if (buf[i]! >= 0x80) return true;
  }
  return false;
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
