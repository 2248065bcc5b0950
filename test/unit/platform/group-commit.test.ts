import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit } from '../../../src/platform/group-commit.js';

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
