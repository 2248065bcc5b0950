import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { applyFirewallToBuffer, asXtext, chunkStream, encodeDataChunks, encodeXtext, has8bit, HeaderFirewallStream, prepareData } from '../../../src/delivery/smtp/message-stream.js';

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
  test('xtext', () => {
    assert.equal(encodeXtext('rfc822;a+b=c d@x'), 'rfc822;a+2Bb+3Dc+20d@x');
    assert.equal(asXtext('rfc822;a+2Bb@x'), 'rfc822;a+2Bb@x');
    assert.equal(asXtext('rfc822;j\u00f6rg@x'), 'rfc822;j+C3+B6rg@x');
  });
});

/** What nodemailer's DataStream writes for the same input (the streamed path's encoder). */
async function viaDataStream(input: Buffer): Promise<Buffer> {
  const ds = new DataStream();
  const out: Buffer[] = [];
  ds.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((resolve) => ds.on('end', resolve));
  ds.end(input);
  await ended;
  return Buffer.concat(out);
}

/** The DATA bytes as one buffer, as they reach the peer. */
const encodeDataBody = (src: Buffer): Buffer => Buffer.concat(encodeDataChunks(src));

describe('encodeDataChunks (the in-memory DATA encoder)', () => {
  const cases: [string, string, string][] = [
    ['well-formed', 'Subject: a\r\n\r\nbody\r\n', 'Subject: a\r\n\r\nbody\r\n.\r\n'],
    ['no final line end', 'Subject: a\r\n\r\nbody', 'Subject: a\r\n\r\nbody\r\n.\r\n'],
    ['empty', '', '\r\n.\r\n'],
    ['leading dot lines', '.a\r\n.\r\n..b\r\n', '..a\r\n..\r\n...b\r\n.\r\n'],
    ['bare LF', 'a\nb\n', 'a\r\nb\r\n.\r\n'],
    ['bare CR', 'a\rb\r', 'a\r\nb\r\n.\r\n'],
    ['LF.LF smuggling', 'a\n.\nMAIL FROM:<x>\r\n', 'a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n'],
    ['CR.CR smuggling', 'a\r.\rb', 'a\r\n..\r\nb\r\n.\r\n'],
    ['dot mid-line untouched', 'a.b\r\n x.\r\n', 'a.b\r\n x.\r\n.\r\n'],
    ['CRCRLF', 'a\r\r\nb', 'a\r\n\r\nb\r\n.\r\n'],
  ];
  for (const [name, input, expected] of cases) {
    test(name, async () => {
      const got = encodeDataBody(Buffer.from(input, 'latin1'));
      assert.equal(got.toString('latin1'), expected);
      assert.equal(got.toString('latin1'), (await viaDataStream(Buffer.from(input, 'latin1'))).toString('latin1'), 'same bytes as DataStream');
    });
  }
  test('well-formed input is not copied: the input itself goes out, then the "." line', () => {
    const raw = Buffer.from('Subject: a\r\n\r\nbody\r\n');
    const chunks = encodeDataChunks(raw);
    assert.equal(chunks[0], raw);
    assert.equal(Buffer.concat(chunks).toString('latin1'), 'Subject: a\r\n\r\nbody\r\n.\r\n');
    assert.equal(encodeDataChunks(Buffer.from('x\r\n.y\r\n')).length, 1, 'a line starting with a dot is rewritten');
  });
  test('random inputs over CR, LF, dot and letters: same bytes as DataStream, no bare CR or LF', async () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const alphabet = [0x0d, 0x0a, 0x2e, 0x61, 0xe9];
    for (let round = 0; round < 300; round++) {
      const input = Buffer.from(Array.from({ length: next() % 24 }, () => alphabet[next() % alphabet.length]!));
      const got = encodeDataBody(input);
      assert.deepEqual(got, await viaDataStream(input), JSON.stringify(input.toString('latin1')));
      assert.doesNotMatch(got.toString('latin1').replace(/\r\n/g, ''), /[\r\n]/);
    }
  });
});

describe('prepareData / applyFirewallToBuffer', () => {
  test('filters the header block, leaves the body, then encodes', () => {
    const { data, removed } = prepareData(Buffer.from(MSG, 'latin1'), { sendOrganizationHeaders: false });
    assert.deepEqual(removed, ['X-MS-Exchange-Organization-SCL', 'X-Mailyard-Forest-Y']);
    assert.equal(Buffer.concat(data).toString('latin1'), 'Subject: a\r\nTo: b@c\r\n\r\nX-MS-Exchange-Organization-Body: kept\r\n..\r\n.\r\n');
  });
  test('nothing to remove: the same buffer comes back (no copy)', () => {
    const raw = Buffer.from('Subject: a\r\n\r\nX-MS-Exchange-Organization-Body: in the body\r\n');
    assert.equal(applyFirewallToBuffer(raw, { sendOrganizationHeaders: false }).message, raw);
    assert.equal(applyFirewallToBuffer(Buffer.from(MSG, 'latin1'), { sendOrganizationHeaders: true }).removed.length, 0);
  });
  test('routing headers off: Received goes', () => {
    const raw = Buffer.from('Received: from x\r\nSubject: a\r\n\r\nb\r\n');
    const r = applyFirewallToBuffer(raw, { sendOrganizationHeaders: true, sendRoutingHeaders: false });
    assert.equal(r.message.toString(), 'Subject: a\r\n\r\nb\r\n');
  });
  test('headers only', () => {
    const r = applyFirewallToBuffer(Buffer.from('A: 1\r\nX-MS-Exchange-Forest-Z: 2\r\n'), { sendOrganizationHeaders: false });
    assert.equal(r.message.toString(), 'A: 1\r\n');
  });
  test('has8bit', () => {
    assert.equal(has8bit(Buffer.from('plain\r\n')), false);
    assert.equal(has8bit(Buffer.from('caf\xe9', 'latin1')), true);
  });
});

describe('chunkStream (a converted message sent through nodemailer)', () => {
  test('chunks split anywhere (before a dot, inside CRLF) give the DATA bytes of the whole: dot-stuffed once', async () => {
    const whole = Buffer.from('Subject: a\r\n\r\n.first\r\nx\r\n..two\r\n.\r\nend\r\n', 'latin1');
    for (const cut of [1, 2, 3, 5, 16, 17, 18, 19]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < whole.length; i += cut) chunks.push(whole.subarray(i, i + cut));
      const ds = new DataStream();
      const out: Buffer[] = [];
      ds.on('data', (c: Buffer) => out.push(c));
      const ended = new Promise((resolve) => ds.on('end', resolve));
      chunkStream(chunks).pipe(ds);
      await ended;
      assert.equal(Buffer.concat(out).toString('latin1'), encodeDataBody(whole).toString('latin1'), `chunks of ${cut}`);
    }
  });
});
