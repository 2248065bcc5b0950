import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord, encodeRecord, type MessageRecord } from '../../../src/queue/record.js';
import type { MessageId } from '../../../src/model/ids.js';

const r: MessageRecord = {
  v: 1, id: '0000000000000000BBBB' as MessageId, receivedAt: 1, mailFrom: 'a@b.example', body: '7BIT', smtputf8: false, source: { kind: 'pickup' }, size: 3,
  hopCount: 0, categorized: false, delayNotified: false, poisonCount: 0, suspended: false, poisoned: false,
  recipients: [{ address: 'c@d.example', status: 'pending', attempts: 0 }],
};

describe('record dedupe key', () => {
  test('a record written before dedupeKey existed still decodes, without a key', () => {
    const text = encodeRecord(r);
    assert.doesNotMatch(text, /dedupeKey/);
    const d = decodeRecord(text, r.id);
    assert.ok(!('error' in d), 'decodes');
    assert.equal((d as MessageRecord).dedupeKey, undefined);
    assert.deepEqual(d, r);
  });
  test('a record with a dedupe key keeps it through encode and decode', () => {
    const withKey: MessageRecord = { ...r, dedupeKey: 'pickup:0123456789abcdef' };
    const d = decodeRecord(encodeRecord(withKey), r.id);
    assert.ok(!('error' in d));
    assert.equal((d as MessageRecord).dedupeKey, 'pickup:0123456789abcdef');
  });
  test('a dedupe key that is not a string is dropped, the record still decodes', () => {
    const d = decodeRecord(JSON.stringify({ ...r, dedupeKey: 42 }), r.id);
    assert.ok(!('error' in d));
    assert.equal((d as MessageRecord).dedupeKey, undefined);
  });
});
