import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Spool } from '../../../src/queue/spool.js';
import { newMessageId } from '../../../src/model/ids.js';
import type { MessageRecord } from '../../../src/queue/record.js';
import { logger, tempDir } from './helpers.js';

function record(id: string, attempts: number): MessageRecord {
  return {
    v: 1, id: id as MessageRecord['id'], receivedAt: 1, mailFrom: 'a@b.example', body: '7BIT', smtputf8: false, source: { kind: 'smtp' }, size: 10,
    hopCount: 0, categorized: true, delayNotified: false, poisonCount: 0, suspended: false, poisoned: false,
    recipients: [{ address: 'x@y.example', status: 'pending', attempts, lastError: 'x'.repeat(200) }],
  };
}

test('the record log rotates, keeps only live records, and replays to the latest state', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const live = new Map<string, MessageRecord>();
    const spool = new Spool({ dataDir: dir, fsync: true, logger, liveRecord: (id) => live.get(id), segmentBytes: 4096 });
    await spool.init();
    await spool.load();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = newMessageId(1_700_000_000_000 + i);
      ids.push(id);
      const { fh } = await spool.writeContent(id, undefined, Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`));
      const r = record(id, 0);
      live.set(id, r);
      await spool.commitNew(r, fh);
    }
    // Many updates of a few messages, and removal of most: the log must not keep growing.
    for (let round = 1; round <= 30; round++) {
      for (const id of ids.slice(0, 2)) {
        const r = record(id, round);
        live.set(id, r);
        await spool.persist(r);
      }
    }
    for (const id of ids.slice(2)) {
      live.delete(id);
      await spool.remove(id);
    }
    for (let round = 31; round <= 60; round++) {
      const r = record(ids[0]!, round);
      live.set(ids[0]!, r);
      await spool.persist(r);
    }
    const segments = await readdir(join(dir, 'queue', 'v1', 'log'));
    assert.ok(segments.length <= 3, `old segments are deleted (${segments.join(', ')})`);
    // The two live messages are small and new: held in the content journal, no file of their own yet.
    assert.equal((await readdir(join(dir, 'queue', 'v1', 'messages'))).length, 0);
    assert.equal(spool.heldStats.messages, 2);
    await spool.close();

    const again = new Spool({ dataDir: dir, fsync: true, logger });
    await again.init();
    const { records, quarantined } = await again.load();
    assert.deepEqual(quarantined, []);
    assert.deepEqual(records.map((r) => [r.id, r.recipients[0]!.attempts]).sort(), [[ids[0], 60], [ids[1], 30]].sort());
    // At start-up they are held again from the journal, whose old segment is kept for them.
    assert.equal(again.heldStats.messages, 2);
    assert.equal((await again.readContent(ids[1]!)).toString('latin1'), 'Subject: 1\r\n\r\nbody\r\n');
    assert.deepEqual((await readdir(join(dir, 'queue', 'v1', 'journal'))).sort(), ['0000000001.dat', '0000000002.dat']);
    await again.close();
  } finally {
    await cleanup();
  }
});
