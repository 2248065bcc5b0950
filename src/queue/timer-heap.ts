/**
 * A min-heap of timed wake-ups driven by ONE Clock timer for the earliest entry, so 100,000 queued
 * messages cost heap entries, not 100,000 runtime timers. Stale entries are the caller's to ignore.
 */
import type { Clock } from '../platform/clock.js';

export interface Wakeup<T> {
  readonly at: number;
  readonly item: T;
}

export class TimerHeap<T> {
  private heap: Wakeup<T>[] = [];
  private armedAt: number | undefined;
  private cancel: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly clock: Clock, private readonly onDue: (items: T[]) => void) {}

  get size(): number {
    return this.heap.length;
  }

  push(at: number, item: T): void {
    const h = this.heap;
    h.push({ at, item });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
    this.arm();
  }

  private pop(): Wakeup<T> | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.at < h[m]!.at) m = l;
        if (r < h.length && h[r]!.at < h[m]!.at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }

  private arm(): void {
    if (this.stopped) return;
    const top = this.heap[0];
    if (!top) return;
    if (this.armedAt !== undefined && this.armedAt <= top.at) return;
    this.cancel?.();
    this.armedAt = top.at;
    this.cancel = this.clock.setTimer(top.at, () => this.fire());
  }

  private fire(): void {
    this.armedAt = undefined;
    this.cancel = undefined;
    const now = this.clock.now();
    const due: T[] = [];
    while (this.heap.length && this.heap[0]!.at <= now) due.push(this.pop()!.item);
    this.arm();
    if (due.length) this.onDue(due);
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
  }
}
