import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/platform/clock.js';
import { TimerHeap } from '../../../src/queue/timer-heap.js';

function setup() {
  const clock = new FakeClock(0);
  const fired: string[] = [];
  const heap = new TimerHeap<string>(clock, (items) => fired.push(...items));
  return { clock, fired, heap };
}

describe('TimerHeap', () => {
  test('wake-ups fire in time order, each once, and leave the heap', () => {
    const { clock, fired, heap } = setup();
    for (const [at, name] of [[50, 'e'], [10, 'a'], [30, 'c'], [20, 'b'], [40, 'd']] as const) heap.push(at, name);
    clock.advance(25);
    assert.deepEqual(fired, ['a', 'b']);
    assert.equal(heap.size, 3);
    clock.advance(100);
    assert.deepEqual(fired, ['a', 'b', 'c', 'd', 'e']);
    assert.equal(heap.size, 0);
  });

  test('a cancelled wake-up never fires and no longer takes room; the others keep their order', () => {
    const { clock, fired, heap } = setup();
    const handles = new Map<string, ReturnType<typeof heap.push>>();
    // 200 entries in scrambled order, then every third one cancelled, the earliest among them.
    const names: string[] = [];
    for (let i = 0; i < 200; i++) {
      const at = ((i * 7919) % 200) + 1;
      const name = `m${String(at).padStart(3, '0')}`;
      names.push(name);
      handles.set(name, heap.push(at, name));
    }
    const cancelled = new Set(names.filter((_, i) => i % 3 === 0));
    cancelled.add('m001');
    for (const n of cancelled) heap.cancel(handles.get(n));
    assert.equal(heap.size, 200 - cancelled.size);
    clock.advance(1000);
    const want = names.filter((n) => !cancelled.has(n)).sort();
    assert.deepEqual(fired, want);
    assert.equal(heap.size, 0);
  });

  test('cancelling twice, after firing, or nothing at all is harmless', () => {
    const { clock, fired, heap } = setup();
    const a = heap.push(10, 'a');
    const b = heap.push(20, 'b');
    heap.cancel(b);
    heap.cancel(b);
    heap.cancel(undefined);
    clock.advance(15);
    heap.cancel(a);
    heap.push(30, 'c');
    clock.advance(100);
    assert.deepEqual(fired, ['a', 'c']);
    assert.equal(heap.size, 0);
  });

  test('cancelling the earliest wake-up lets the next one fire at its own time', () => {
    const { clock, fired, heap } = setup();
    const first = heap.push(10, 'first');
    heap.push(50, 'second');
    heap.cancel(first);
    clock.advance(49);
    assert.deepEqual(fired, []);
    clock.advance(1);
    assert.deepEqual(fired, ['second']);
  });
});
