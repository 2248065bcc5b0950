import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, truncate, stat, writeFile, unlink, mkdtemp, rm } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../../../src/queue/spool.js';
import { newMessageId, type MessageId } from '../../../src/model/ids.js';
import type { MessageRecord } from '../../../src/queue/record.js';
import { logger, tempDir, waitFor } from './helpers.js';

function record(id: MessageId): MessageRecord {
  return {
    v: 1, id, receivedAt: 1, mailFrom: 'a@b.example', body: '7BIT', smtputf8: false, source: { kind: 'smtp' }, size: 10,
    hopCount: 0, categorized: true, delayNotified: false, poisonCount: 0, suspended: false, poisoned: false,
    recipients: [{ address: 'x@y.example', status: 'pending', attempts: 0 }],
  };
}

const bodyOf = (i: number) => Buffer.from(`Subject: message ${i}\r\n\r\n${'x'.repeat(300 + i)}\r\n`, 'latin1');
const ls = async (dir: string, sub: string) => (await readdir(join(dir, 'queue', 'v1', sub))).filter((n) => !n.startsWith('.')).sort();

/** Runs `fn` with a fresh data directory that is removed afterwards. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempDir();
  try {
    await fn(dir);
  } finally {
    await cleanup();
  }
}

async function openSpool(dir: string, opts: { holdMs?: number; journalSegmentBytes?: number; holdBudgetBytes?: number } = {}) {
  const spool = new Spool({ dataDir: dir, fsync: true, logger, ...opts });
  await spool.init();
  const loaded = await spool.load();
  return { spool, loaded };
}

/** Accepts `n` messages the way the queue does (stage, then commit); returns their ids. */
async function accept(spool: Spool, n: number, from = 0): Promise<MessageId[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, k) => {
      const id = newMessageId();
      const { fh } = await spool.writeContent(id, undefined, bodyOf(from + k));
      await spool.commitNew(record(id), fh);
      return id;
    }),
  );
}

test('journalled messages that leave the queue never get a file, and emptied journal segments are deleted', () =>
  inTempDir(async (dir) => {
    const { spool } = await openSpool(dir, { journalSegmentBytes: 4096 });
    const ids = await accept(spool, 40);
    assert.deepEqual(await ls(dir, 'messages'), [], 'no content file while journalled');
    assert.ok((await ls(dir, 'journal')).length > 1, 'the 4 KB segments rotated');
    assert.deepEqual(await spool.readContent(ids[7]!), bodyOf(7));
    for (const id of ids) await spool.remove(id);
    await waitFor(async () => (await ls(dir, 'journal')).length === 1, 'only the segment being appended to remains');
    assert.deepEqual(await ls(dir, 'messages'), []);
    assert.deepEqual(spool.heldStats, { messages: 0, bytes: 0, journalSegments: 1 });
    await spool.close();
  }));

test('a journalled message still queued after holdMs gets its own file and the journal lets go of it', () =>
  inTempDir(async (dir) => {
    const { spool } = await openSpool(dir, { holdMs: 50, journalSegmentBytes: 4096 });
    const ids = await accept(spool, 20);
    await waitFor(() => spool.heldStats.messages === 0, 'all written out');
    assert.deepEqual(await ls(dir, 'messages'), ids.map((id) => `${id}.eml`).sort());
    for (const [i, id] of ids.entries()) assert.deepEqual(await readFile(spool.bodyPath(id)), bodyOf(i));
    // Every segment but the current one held only these messages, so they are gone.
    await waitFor(async () => (await ls(dir, 'journal')).length === 1, 'old segments deleted');
    await spool.close();
  }));

test('removing a message while its file is being written leaves neither the file nor a journal entry in use', () =>
  inTempDir(async (dir) => {
    const { spool } = await openSpool(dir);
    const ids = await accept(spool, 10);
    const writes = ids.map((id) => spool.ensureFile(id));
    await Promise.all(ids.map((id) => spool.remove(id)));
    await Promise.allSettled(writes);
    assert.deepEqual(await ls(dir, 'messages'), []);
    assert.equal(spool.heldStats.messages, 0);
    await spool.close();
  }));

test('after a crash, queued messages are taken back from the journal; removed ones are not', () =>
  inTempDir(async (dir) => {
    const { spool } = await openSpool(dir, { journalSegmentBytes: 4096 });
    const ids = await accept(spool, 30);
    for (const id of ids.slice(0, 10)) await spool.remove(id);
    // No close(): the process is gone; what is on disk is all there is.
    const { spool: again, loaded } = await openSpool(dir, { journalSegmentBytes: 4096 });
    assert.deepEqual(loaded.quarantined, []);
    assert.deepEqual(loaded.records.map((r) => r.id).sort(), ids.slice(10).sort());
    // Held again, with their bytes, and nothing written to start.
    assert.equal(again.heldStats.messages, 20);
    assert.deepEqual(await ls(dir, 'messages'), []);
    for (const [i, id] of ids.entries()) if (i >= 10) assert.deepEqual(await again.readContent(id), bodyOf(i));
    // A second crash before they got files: the segments kept for them bring them back again.
    const { spool: third, loaded: loaded3 } = await openSpool(dir, { journalSegmentBytes: 4096 });
    assert.deepEqual(loaded3.quarantined, []);
    assert.equal(third.heldStats.messages, 20);
    for (const [i, id] of ids.entries()) if (i >= 10) assert.deepEqual(await third.readContent(id), bodyOf(i));
    await third.close();
    // Once they have files of their own, the old segments go; only the one being appended to stays.
    await Promise.all(ids.slice(10).map((id) => again.ensureFile(id)));
    assert.deepEqual(await ls(dir, 'messages'), ids.slice(10).map((id) => `${id}.eml`).sort());
    for (const [i, id] of ids.entries()) if (i >= 10) assert.deepEqual(await readFile(again.bodyPath(id)), bodyOf(i));
    await waitFor(async () => (await ls(dir, 'journal')).length === 1, 'old segments deleted');
    await again.close();
    await spool.close();
  }));

test('a journal entry torn by a power cut: its message is quarantined, the others are restored', () =>
  inTempDir(async (dir) => {
    const { spool } = await openSpool(dir);
    const first = await accept(spool, 3);
    const [last] = await accept(spool, 1, 3);
    await spool.close();
    // The record line made it to the disk but the end of the content did not.
    const [segment] = await ls(dir, 'journal');
    const path = join(dir, 'queue', 'v1', 'journal', segment!);
    await truncate(path, (await stat(path)).size - 5);
    const { spool: again, loaded } = await openSpool(dir);
    assert.deepEqual(loaded.records.map((r) => r.id).sort(), [...first].sort());
    assert.deepEqual(loaded.quarantined.map((q) => [q.id, q.reason]), [[last, 'content file is missing']]);
    for (const [i, id] of first.entries()) assert.deepEqual(await again.readContent(id), bodyOf(i));
    await again.close();
  }));

test('past the memory budget for journalled messages, new ones get their own file at once', () =>
  inTempDir(async (dir) => {
    // The test messages are 324-329 bytes: three fit in 1,100 bytes, the fourth does not.
    const { spool } = await openSpool(dir, { holdBudgetBytes: 1100 });
    const ids: MessageId[] = [];
    for (let i = 0; i < 5; i++) ids.push(...(await accept(spool, 1, i)));
    assert.equal(spool.heldStats.messages, 3);
    assert.deepEqual(await ls(dir, 'messages'), ids.slice(3).map((id) => `${id}.eml`).sort());
    for (const [i, id] of ids.entries()) assert.deepEqual(await spool.readContent(id), bodyOf(i));
    // Memory is given back when a held message leaves: the next one is journalled again.
    await spool.remove(ids[0]!);
    const [next] = await accept(spool, 1, 5);
    assert.equal(spool.heldStats.messages, 3);
    assert.ok(!(await ls(dir, 'messages')).includes(`${next}.eml`));
    await spool.close();
  }));

test('a full disk: failed writes lose no acknowledged message, and spooling resumes once there is space', async (t) => {
  // A real full disk: the spool on a 256 KB tmpfs (needs root, as on the CI machine).
  const mnt = await mkdtemp(join(tmpdir(), 'mailyard-full-'));
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]).status !== 0) {
    await rm(mnt, { recursive: true, force: true });
    t.skip('cannot mount a small tmpfs here (not root)');
    return;
  }
  const spools: Spool[] = [];
  try {
    // Ballast to delete later, standing in for an administrator freeing space.
    await writeFile(join(mnt, 'ballast'), Buffer.alloc(64 * 1024));
    const { spool } = await openSpool(mnt);
    spools.push(spool);
    const acked: { id: MessageId; i: number }[] = [];
    let failures = 0;
    for (let i = 0; i < 3000 && failures < 10; i++) {
      const id = newMessageId();
      try {
        const { fh } = await spool.writeContent(id, undefined, bodyOf(i % 50));
        await spool.commitNew(record(id), fh);
        acked.push({ id, i: i % 50 });
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'ENOSPC', String(err));
        failures++;
      }
    }
    assert.ok(failures > 0 && acked.length > 50, `the disk filled up after ${acked.length} messages`);
    await unlink(join(mnt, 'ballast'));
    // Room again: the next messages are taken (the journal moved past the torn write).
    for (let i = 0; i < 5; i++) {
      const id = newMessageId();
      const { fh } = await spool.writeContent(id, undefined, bodyOf(i));
      await spool.commitNew(record(id), fh);
      acked.push({ id, i });
    }
    // A restart on the same spool finds every acknowledged message with its bytes.
    const { spool: again, loaded } = await openSpool(mnt);
    spools.push(again);
    assert.deepEqual(loaded.records.map((r) => r.id).sort(), acked.map((a) => a.id).sort());
    for (const a of acked) assert.deepEqual(await again.readContent(a.id), bodyOf(a.i));
    const ackedIds = new Set<string>(acked.map((a) => a.id));
    for (const q of loaded.quarantined) assert.ok(!ackedIds.has(q.id), `${q.id} was acknowledged but quarantined: ${q.reason}`);
  } finally {
    for (const s of spools) await s.close().catch(() => {});
    spawnSync('umount', [mnt]);
    await rm(mnt, { recursive: true, force: true });
  }
});
