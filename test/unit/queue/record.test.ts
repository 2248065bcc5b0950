import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord, encodeRecord, readHeaderFacts, type MessageRecord } from '../../../src/queue/record.js';
import { CrlfNormalizer } from '../../../src/queue/record.js';
import type { MessageId } from '../../../src/model/ids.js';

const r: MessageRecord = {
  v: 1, id: '0000000000000000AAAA' as MessageId, receivedAt: 1, mailFrom: null, body: '7BIT', smtputf8: false, source: { kind: 'dsn' }, size: 3,
  hopCount: 0, categorized: false, delayNotified: false, poisonCount: 0, suspended: false, poisoned: false,
  recipients: [{ address: 'a@b.example', status: 'pending', attempts: 0 }],
};

describe('records', () => {
  test('encode then decode gives the same record', () => assert.deepEqual(decodeRecord(encodeRecord(r), r.id), r));
  const bad: [string, string][] = [
    ['truncated JSON', encodeRecord(r).slice(0, 40)],
    ['another version', JSON.stringify({ ...r, v: 2 })],
    ['no recipients', JSON.stringify({ ...r, recipients: [] })],
    ['a malformed recipient', JSON.stringify({ ...r, recipients: [{ address: 'x' }] })],
    ['an id that does not match the file', JSON.stringify({ ...r, id: 'OTHER' })],
  ];
  for (const [name, text] of bad) test(`${name} is reported as corrupt`, () => assert.ok('error' in decodeRecord(text, r.id)));
});

describe('header facts', () => {
  test('Received headers are counted, folded headers unfolded, the body never read', () => {
    const f = readHeaderFacts('Received: a\r\n\tb\r\nReceived: c\r\nSubject: Hello\r\n world\r\nMessage-ID: <x@y>\r\nFrom: Ann <a@b>');
    assert.deepEqual(f, { hopCount: 2, subject: 'Hello world', internetMessageId: '<x@y>', fromHeader: 'Ann <a@b>' });
  });
});

describe('CRLF normalisation', () => {
  const table: [string, string[], string][] = [
    ['LF only', ['a\nb\n'], 'a\r\nb\r\n'],
    ['CRLF kept', ['a\r\nb\r\n'], 'a\r\nb\r\n'],
    ['CR and LF split across chunks', ['a\r', '\nb\n'], 'a\r\nb\r\n'],
    ['LF at a chunk start after a plain chunk', ['a', '\nb'], 'a\r\nb'],
  ];
  for (const [name, chunks, want] of table) {
    test(name, () => {
      const n = new CrlfNormalizer();
      assert.equal(Buffer.concat(chunks.map((c) => n.push(Buffer.from(c)))).toString(), want);
    });
  }
});
