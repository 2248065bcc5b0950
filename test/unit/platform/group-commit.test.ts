import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit, unwritten } from '../../../src/platform/group-commit.js';

test('appends made in the same tick share one batch; appends during a batch share the next', async () => {
  const batches: number[][] = [];
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  const g = new GroupCommit<number, number>(async (items) => {
    batches.push(items);
    await gate;
    return batches.length;
  });
  const first = [1, 2, 3].map((i) => g.add(i));
  await new Promise((r) => setImmediate(r));
  // The first batch is in flight: these wait for the next one.
  const second = [4, 5].map((i) => g.add(i));
  assert.equal(g.busy, true);
  const firstRelease = release;
  gate = Promise.resolve();
  firstRelease();
  assert.deepEqual(await Promise.all(first), [1, 1, 1]);
  assert.deepEqual(await Promise.all(second), [2, 2]);
  assert.deepEqual(batches, [[1, 2, 3], [4, 5]]);
  assert.equal(g.busy, false);
});

test('a failed batch rejects exactly its own appends, and the next batch still runs after the rotation hook', async () => {
  let calls = 0;
  let after = 0;
  const g = new GroupCommit<string, string>(
    async (items) => {
      calls++;
      if (items.includes('bad')) throw new Error('disk full');
      return items.join(',');
    },
    async () => {
      after++;
      throw new Error('rotation failed'); // ignored
    },
  );
  const bad = [g.add('a'), g.add('bad')];
  await assert.rejects(bad[0]!, /disk full/);
  await assert.rejects(bad[1]!, /disk full/);
  assert.equal(await g.add('c'), 'c');
  assert.equal(calls, 2);
  assert.equal(after, 2);
});

test('after a short write, what is left to write starts at the first byte not written', () => {
  const bufs = [Buffer.from('abc'), Buffer.alloc(0), Buffer.from('de'), Buffer.from('fghi')];
  const rest = (done: number) => Buffer.concat(unwritten(bufs, done)).toString();
  for (let done = 0; done <= 9; done++) assert.equal(rest(done), 'abcdefghi'.slice(done), `after ${done} bytes`);
  assert.deepEqual(unwritten(bufs, 0).map((b) => b.length), [3, 2, 4], 'empty buffers are left out');
  const view = unwritten(bufs, 4)[0]!;
  assert.ok(view.buffer === bufs[2]!.buffer && view.byteOffset === bufs[2]!.byteOffset + 1, 'a view, not a copy');
});
