import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { asXtext, encodeXtext, findHeaderEnd, HeaderFirewallStream } from '../../../src/delivery/smtp/message-stream.js';

async function through(chunks: readonly string[], own = false): Promise<string> {
  const out: Buffer[] = [];
  const s = new HeaderFirewallStream({ sendOrganizationHeaders: own });
  Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(s);
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out).toString('latin1');
}

const MSG = 'Subject: a\r\nX-MS-Exchange-Organization-SCL: 1\r\nX-Mailyard-Forest-Y: 2\r\n\tfolded\r\nTo: b@c\r\n\r\nX-MS-Exchange-Organization-Body: kept\r\n.\r\n';
const EXPECTED = 'Subject: a\r\nTo: b@c\r\n\r\nX-MS-Exchange-Organization-Body: kept\r\n.\r\n';

describe('HeaderFirewallStream', () => {
  test('filters the header block, leaves the body byte for byte (no dot-stuffing here)', async () => {
    assert.equal(await through([MSG]), EXPECTED);
  });
  test('any chunking gives the same result', async () => {
    for (const size of [1, 2, 3, 7, 16]) {
      const chunks: string[] = [];
      for (let i = 0; i < MSG.length; i += size) chunks.push(MSG.slice(i, i + size));
      assert.equal(await through(chunks), EXPECTED, `chunk size ${size}`);
    }
  });
  test('untouched for our own servers', async () => {
    assert.equal(await through([MSG], true), MSG);
  });
  test('headers only, no body', async () => {
    assert.equal(await through(['A: 1\r\nX-MS-Exchange-Forest-Z: 2\r\n']), 'A: 1\r\n');
  });
  test('8-bit bytes pass unchanged', async () => {
    const m = 'Subject: caf\xe9\r\n\r\nd\xe9j\xe0\r\n';
    assert.equal(await through([m]), m);
  });
});

describe('helpers', () => {
  test('findHeaderEnd', () => {
    assert.equal(findHeaderEnd(Buffer.from('A: 1\r\n\r\nbody')), 6);
    assert.equal(findHeaderEnd(Buffer.from('A: 1\n\nbody')), 5);
    assert.equal(findHeaderEnd(Buffer.from('\r\nbody')), 0);
    assert.equal(findHeaderEnd(Buffer.from('A: 1\r\nB: 2')), -1);
  });
  test('xtext', () => {
    assert.equal(encodeXtext('rfc822;a+b=c d@x'), 'rfc822;a+2Bb+3Dc+20d@x');
    assert.equal(asXtext('rfc822;a+2Bb@x'), 'rfc822;a+2Bb@x');
    assert.equal(asXtext('rfc822;j\u00f6rg@x'), 'rfc822;j+C3+B6rg@x');
  });
});
