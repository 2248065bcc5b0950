import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { downgrade8bit, downgrade8bitChunks, encodeBase64, encodeQuotedPrintable } from '../../../src/delivery/smtp/downgrade.js';
import { binary } from '../../helpers/bytes.js';

/** Independent oracle: RFC 2045 quoted-printable decoding (soft breaks removed, =XX to bytes). */
function decodeQp(text: string): Buffer {
  const bytes: number[] = [];
  const s = text.replace(/=\r\n/g, '');
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '=') {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(s.charCodeAt(i));
  }
  return Buffer.from(bytes);
}

function no8bit(buf: Buffer): boolean {
  return buf.every((b) => b < 0x80);
}

function ok(msg: Buffer): Buffer {
  const r = downgrade8bit(msg);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.message;
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');
const TEXT = 'd\u00e9j\u00e0 vu \u2014 na\u00efve caf\u00e9 = ok\r\n' + '\u00fc'.repeat(60) + '\r\n.dot line\r\ntrailing space \r\n';

describe('downgrade8bit: what is converted and how', () => {
  const cases: { name: string; input: Buffer; check: (out: Buffer) => void | Promise<void> }[] = [
    {
      name: 'single-part text/plain 8bit → quoted-printable, decodes to the same bytes',
      input: utf8(`From: a@contoso.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nSubject: x\r\n\r\n${TEXT}`),
      check: (out) => {
        const s = out.toString('latin1');
        const [head, body] = [s.slice(0, s.indexOf('\r\n\r\n') + 2), s.slice(s.indexOf('\r\n\r\n') + 4)];
        assert.equal(head, 'From: a@contoso.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nSubject: x\r\nContent-Transfer-Encoding: quoted-printable\r\n');
        assert.deepEqual(decodeQp(body), utf8(TEXT));
        for (const line of body.split('\r\n')) assert.ok(line.length <= 76, `QP line too long: ${line}`);
        assert.match(body, /trailing space=20\r\n$/, 'a space ending a line is encoded');
      },
    },
    {
      name: 'no Content-Transfer-Encoding and no MIME-Version: text/plain assumed, MIME-Version added',
      input: utf8('Subject: plain\r\n\r\nna\u00efve\r\n'),
      check: (out) => assert.equal(out.toString('latin1'), 'Subject: plain\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve\r\n'),
    },
    {
      name: 'application/octet-stream 8bit → base64 of exactly the body bytes',
      input: Buffer.concat([Buffer.from('MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'), Buffer.from([0x00, 0xff, 0x80, 0x41, 0x0d, 0x0a, 0xfe])]),
      check: (out) => {
        const s = out.toString('latin1');
        assert.match(s, /\r\nContent-Transfer-Encoding: base64\r\n\r\n/);
        assert.doesNotMatch(s, /8bit/i);
        assert.deepEqual(Buffer.from(s.slice(s.indexOf('\r\n\r\n') + 4), 'base64'), Buffer.from([0x00, 0xff, 0x80, 0x41, 0x0d, 0x0a, 0xfe]));
      },
    },
    {
      name: 'multipart/alternative with one 8bit part: only that part changes, mailparser reads the same text',
      input: utf8(
        'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b1 x"\r\n\r\npreamble\r\n' +
          '--b1 x\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nplain ascii\r\n' +
          '--b1 x\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>gr\u00fc\u00dfe</p>\r\n' +
          '--b1 x--\r\nepilogue\r\n',
      ),
      check: async (out) => {
        assert.equal(
          out.toString('latin1'),
          'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b1 x"\r\n\r\npreamble\r\n' +
            '--b1 x\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nplain ascii\r\n' +
            '--b1 x\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>gr=C3=BC=C3=9Fe</p>\r\n' +
            '--b1 x--\r\nepilogue\r\n',
        );
        const parsed = await simpleParser(out);
        assert.equal(parsed.text?.trim(), 'plain ascii');
        assert.equal(parsed.html && parsed.html.trim(), '<p>gr\u00fc\u00dfe</p>');
      },
    },
    {
      name: 'nested multipart/mixed with an 8-bit attachment and LF-only line ends',
      input: Buffer.concat([
        utf8('Content-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: multipart/alternative; boundary=inner\n\n--inner\nContent-Type: text/plain; charset=utf-8\n\nh\u00e9\n--inner--\n'),
        utf8('--outer\nContent-Type: image/png\nContent-Disposition: attachment; filename=x.png\nContent-Transfer-Encoding: binary\n\n'),
        Buffer.from([0x89, 0x50, 0x4e, 0x47]),
        utf8('\n--outer--\n'),
      ]),
      check: async (out) => {
        const parsed = await simpleParser(out);
        assert.equal(parsed.text?.trim(), 'h\u00e9');
        assert.equal(parsed.attachments.length, 1);
        assert.deepEqual(parsed.attachments[0]!.content, Buffer.from([0x89, 0x50, 0x4e, 0x47]));
      },
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const out = ok(c.input);
      assert.ok(no8bit(out), 'no byte ≥ 0x80 left');
      await c.check(out);
    });
  }

  test('a 7-bit message is returned untouched (the same buffer)', () => {
    const msg = Buffer.from('Subject: a\r\nContent-Transfer-Encoding: 8bit\r\n\r\nascii only\r\n');
    const r = downgrade8bit(msg);
    assert.ok(r.ok);
    assert.equal(r.message, msg);
  });
});

describe('downgrade8bit: what is refused (the agent keeps bouncing with 5.6.3)', () => {
  const cases: { name: string; input: Buffer; reason: RegExp }[] = [
    { name: '8-bit header field', input: utf8('Subject: caf\u00e9\r\nContent-Transfer-Encoding: 8bit\r\n\r\nd\u00e9j\u00e0\r\n'), reason: /header/ },
    { name: '8-bit header field only (body 7-bit)', input: utf8('Subject: caf\u00e9\r\n\r\nascii\r\n'), reason: /header/ },
    {
      name: '8-bit header inside a part',
      input: utf8('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment; filename="\u00e9.txt"\r\n\r\nx\r\n--b--\r\n'),
      reason: /header/,
    },
    { name: '8-bit message/rfc822 part', input: utf8('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n\u00e9\r\n--b--\r\n'), reason: /message\/rfc822/ },
    { name: 'multipart without boundary parameter', input: utf8('Content-Type: multipart/mixed\r\n\r\n\u00e9\r\n'), reason: /boundary/ },
    { name: 'multipart whose boundary never occurs', input: utf8('Content-Type: multipart/mixed; boundary=zz\r\n\r\n--other\r\n\r\n\u00e9\r\n'), reason: /boundary/ },
    { name: '8-bit preamble', input: utf8('Content-Type: multipart/mixed; boundary=b\r\n\r\n\u00e9\r\n--b\r\n\r\nx\r\n--b--\r\n'), reason: /preamble/ },
    { name: '8-bit bytes in a part labelled base64', input: utf8('Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\u00e9\r\n'), reason: /base64/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = downgrade8bit(c.input);
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.reason, c.reason);
    });
  }
});

describe('encoders', () => {
  test('quoted-printable: soft breaks keep lines ≤ 76 and never split an =XX; = and tab at end encoded', () => {
    const input = Buffer.from('=' + 'a'.repeat(73) + '\u00e9\u00e9 end\t\r\nx', 'utf8');
    const out = encodeQuotedPrintable(input).toString('latin1');
    for (const line of out.split('\r\n')) assert.ok(line.length <= 76, line);
    assert.doesNotMatch(out, /=[0-9A-F]?=\r\n/, 'no =XX split by a soft break');
    assert.match(out, /end=09\r\nx$/);
    assert.deepEqual(decodeQp(out), input);
  });

  test('base64: 76-character lines joined by CRLF', () => {
    const out = encodeBase64(Buffer.alloc(200, 0xff), true).toString('latin1');
    const lines = out.split('\r\n');
    assert.equal(lines.at(-1), '');
    assert.ok(lines.slice(0, -2).every((l) => l.length === 76));
    assert.deepEqual(Buffer.from(out, 'base64'), Buffer.alloc(200, 0xff));
  });
});


/** ~190 KB of UTF-8 text: accents, lines starting with a dot, a 3000-byte line, "=" signs. */
function bigText(): string {
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) {
    if (i % 50 === 0) lines.push('.' + (i % 100 === 0 ? '' : 'dot line'));
    else if (i === 1234) lines.push('\u00e9'.repeat(1500));
    else lines.push(`${i} Gr\u00fc\u00dfe aus K\u00f6ln = caf\u00e9 \u2014 na\u00efve ${'x'.repeat(i % 40)} `);
  }
  return lines.join('\r\n') + '\r\n';
}

describe('downgrade8bit: messages of any size', () => {
  const text = bigText();
  const attachment = binary(420_000);
  const message = Buffer.concat([
    utf8('Received: from a.contoso.test by mail.contoso.test; Mon, 23 Nov 2026 21:00:00 +0000\r\nFrom: a@contoso.test\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="=_big"\r\n\r\n'),
    utf8(`--=_big\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}\r\n`),
    utf8('--=_big\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=blob.bin\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
    attachment,
    utf8('\r\n--=_big--\r\n'),
  ]);

  test('a 600 KB multipart with an 8-bit text part and a binary attachment: 7-bit, short lines, same content', async () => {
    assert.ok(message.length > 600_000);
    const out = ok(message);
    assert.ok(no8bit(out), 'no byte ≥ 0x80 left');
    const s = out.toString('latin1');
    assert.ok(s.startsWith('Received: from a.contoso.test by mail.contoso.test;'), 'header block unchanged, Received first');
    assert.ok(s.split('\r\n').every((l) => l.length <= 998), 'no line over 998');
    assert.doesNotMatch(s.replace(/\r\n/g, ''), /[\r\n]/, 'only CRLF line ends');
    const qp = s.slice(s.indexOf('quoted-printable\r\n\r\n') + 20, s.indexOf('\r\n--=_big\r\n', s.indexOf('quoted-printable')));
    assert.ok(qp.split('\r\n').every((l) => l.length <= 76), 'quoted-printable lines ≤ 76');
    assert.deepEqual(decodeQp(qp), utf8(text), 'the text part decodes to exactly its original bytes');
    const parsed = await simpleParser(out);
    assert.equal(parsed.text, text.replace(/\r\n/g, '\n'));
    assert.equal(parsed.attachments.length, 1);
    assert.ok(parsed.attachments[0]!.content.equals(attachment), 'attachment bytes identical');
  });

  test('the chunked form joins to the same bytes and reuses the input for what does not change', () => {
    const r = downgrade8bitChunks(message);
    assert.ok(r.ok);
    const joined = Buffer.concat(r.chunks);
    assert.equal(joined.length, r.length);
    assert.deepEqual(joined, ok(message));
    // The top-level header block is a slice of the input, not a copy.
    assert.equal(r.chunks[0]!.buffer, message.buffer);
    assert.ok(r.chunks.length > 10, 'large parts are encoded in several chunks');
  });

  test('large single-part 8-bit text without MIME-Version: Received still first, MIME-Version and CTE added last', async () => {
    const body = text.repeat(2);
    const input = utf8(`Received: from x by y; Mon, 23 Nov 2026 21:00:00 +0000\r\nSubject: single\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}`);
    const out = ok(input);
    const s = out.toString('latin1');
    assert.equal(s.slice(0, s.indexOf('\r\n\r\n') + 2), 'Received: from x by y; Mon, 23 Nov 2026 21:00:00 +0000\r\nSubject: single\r\nContent-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n');
    assert.ok(no8bit(out));
    assert.deepEqual(decodeQp(s.slice(s.indexOf('\r\n\r\n') + 4)), utf8(body));
  });

  test('large messages are refused for the same reasons: 8-bit header, 8-bit message/rfc822 part', () => {
    const header = downgrade8bit(Buffer.concat([utf8('Subject: caf\u00e9\r\n\r\n'), attachment]));
    assert.equal(header.ok, false);
    assert.match(header.ok ? '' : header.reason, /header/);
    const rfc822 = downgrade8bit(Buffer.concat([utf8('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n'), attachment, utf8('\r\n--b--\r\n')]));
    assert.equal(rfc822.ok, false);
    assert.match(rfc822.ok ? '' : rfc822.reason, /message\/rfc822/);
  });

  test('encoders across chunk boundaries: quoted-printable and base64 of 1 MB decode to the input', () => {
    const input = binary(1_000_000);
    const qp = encodeQuotedPrintable(input).toString('latin1');
    assert.ok(qp.split('\r\n').every((l) => l.length <= 76));
    // Bare CR and LF in the input become hard CRLF breaks, so compare with the same normalisation.
    const normalised = Buffer.from(input.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    assert.deepEqual(decodeQp(qp), normalised);
    const b64 = encodeBase64(input, false).toString('latin1');
    const lines = b64.split('\r\n');
    assert.ok(lines.slice(0, -1).every((l) => l.length === 76));
    assert.ok(lines.at(-1)!.length > 0 && lines.at(-1)!.length <= 76);
    assert.deepEqual(Buffer.from(b64, 'base64'), input);
  });
});
