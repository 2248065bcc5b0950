/**
 * A min-heap of timed wake-ups driven by ONE Clock timer for the earliest entry, so 100,000 queued
 * messages cost heap entries, not 100,000 runtime timers. push() returns a handle that cancel()
 * takes out of the heap again: a message that leaves the queue takes its wake-ups with it, so the
 * heap holds entries for queued messages only (a delay-notice wake-up four hours ahead must not
 * outlive a message delivered in milliseconds). Entries the caller did not cancel and no longer
 * needs are the caller's to ignore when they fire.
 */
import type { Clock } from '../platform/clock.js';

/** One scheduled wake-up; `index` is its place in the heap, -1 once fired or cancelled. */
export interface Wakeup<T> {
  readonly at: number;
  readonly item: T;
  index: number;
}

export class TimerHeap<T> {
  private heap: Wakeup<T>[] = [];
  private armedAt: number | undefined;
  private cancelTimer: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly clock: Clock, private readonly onDue: (items: T[]) => void) {}

  get size(): number {
    return this.heap.length;
  }

  push(at: number, item: T): Wakeup<T> {
    const w: Wakeup<T> = { at, item, index: this.heap.length };
    this.heap.push(w);
    this.up(w.index);
    this.arm();
    return w;
  }

  /** Takes a wake-up out of the heap; a no-op once it has fired or was cancelled. */
  cancel(w: Wakeup<T> | undefined): void {
    if (!w || w.index < 0) return;
    const h = this.heap;
    const i = w.index;
    const last = h.pop()!;
    w.index = -1;
    if (last !== w) {
      h[i] = last;
      last.index = i;
      this.down(i);
      this.up(last.index);
    }
    // The runtime timer may now be early (the cancelled entry was the earliest): fire() finds
    // nothing due and re-arms for the next one.
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    const a = h[i]!;
    const b = h[j]!;
    h[i] = b;
    h[j] = a;
    b.index = i;
    a.index = j;
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) break;
      this.swap(p, i);
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.at < h[m]!.at) m = l;
      if (r < h.length && h[r]!.at < h[m]!.at) m = r;
      if (m === i) return;
      this.swap(m, i);
      i = m;
    }
  }

  private pop(): Wakeup<T> | undefined {
    const top = this.heap[0];
    this.cancel(top);
    return top;
  }

  private arm(): void {
    if (this.stopped) return;
    const top = this.heap[0];
    if (!top) return;
    if (this.armedAt !== undefined && this.armedAt <= top.at) return;
    this.cancelTimer?.();
    this.armedAt = top.at;
    this.cancelTimer = this.clock.setTimer(top.at, () => this.fire());
  }

  private fire(): void {
    this.armedAt = undefined;
    this.cancelTimer = undefined;
    const now = this.clock.now();
    const due: T[] = [];
    while (this.heap.length && this.heap[0]!.at <= now) due.push(this.pop()!.item);
    this.arm();
    if (due.length) this.onDue(due);
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }
}
