import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frameHeader, parseSegment } from '../../../src/queue/content-journal.js';

const ID_A = '019B8D627A80BF07E012';
const ID_B = '019B8D627A80BF07E013';
const entry = (id: string, text: string) => {
  const content = Buffer.from(text, 'latin1');
  return Buffer.concat([frameHeader(id, content), content]);
};

test('a segment of framed entries reads back in order, byte for byte', () => {
  const binary = Buffer.from([0, 1, 0x80, 0xff, 0x0d, 0x0a]).toString('latin1');
  const seg = Buffer.concat([entry(ID_A, 'Subject: a\r\n\r\nbody\r\n'), entry(ID_B, binary), entry('019B8D627A80BF07E014', '')]);
  const { entries, clean } = parseSegment(seg);
  assert.equal(clean, true);
  assert.deepEqual([...entries.keys()], [ID_A, ID_B, '019B8D627A80BF07E014']);
  assert.equal(entries.get(ID_A)!.toString('latin1'), 'Subject: a\r\n\r\nbody\r\n');
  assert.deepEqual(entries.get(ID_B), Buffer.from(binary, 'latin1'));
  assert.equal(entries.get('019B8D627A80BF07E014')!.length, 0);
});

test('a torn last entry (cut anywhere in its header or content) is dropped; the ones before it stay', () => {
  const first = entry(ID_A, 'first\r\n');
  const second = entry(ID_B, 'second message\r\n');
  for (let cut = 1; cut < second.length; cut++) {
    const { entries, clean } = parseSegment(Buffer.concat([first, second.subarray(0, cut)]));
    assert.equal(clean, false, `cut at ${cut}`);
    assert.deepEqual([...entries.keys()], [ID_A], `cut at ${cut}`);
  }
});

test('a flipped byte in the marker, the id, the length or the content loses that entry only', () => {
  const first = entry(ID_A, 'first\r\n');
  const second = entry(ID_B, 'second message\r\n');
  for (const at of [0, 4, 10, 24, 27, 32, second.length - 1]) {
    const bad = Buffer.from(second);
    bad[at] = bad[at]! ^ 0x20;
    const { entries, clean } = parseSegment(Buffer.concat([first, bad, entry('019B8D627A80BF07E014', 'third\r\n')]));
    assert.equal(clean, false, `byte ${at}`);
    assert.deepEqual([...entries.keys()], [ID_A, '019B8D627A80BF07E014'], `byte ${at}`);
    assert.equal(entries.get('019B8D627A80BF07E014')!.toString('latin1'), 'third\r\n');
  }
});

test('an entry cut short in the middle of a segment (a write that failed on a full disk) does not hide the entries after it', () => {
  const first = entry(ID_A, 'first\r\n');
  const torn = entry(ID_B, 'x'.repeat(500)).subarray(0, 200);
  const after = entry('019B8D627A80BF07E014', 'written after the failure\r\n');
  const { entries, clean } = parseSegment(Buffer.concat([first, torn, after]));
  assert.equal(clean, false);
  assert.deepEqual([...entries.keys()], [ID_A, '019B8D627A80BF07E014']);
  assert.equal(entries.get('019B8D627A80BF07E014')!.toString('latin1'), 'written after the failure\r\n');
});
