/**
 * Time as an injected dependency: the queue asks a Clock for "now" and for timers, so tests drive
 * retries, delay notices and expiry with a FakeClock instead of waiting.
 */

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls fn at (or soon after) the absolute time `at`; returns a cancel function. */
  setTimer(at: number, fn: () => void): () => void;
}

/** Node's timers; long delays are chained because setTimeout caps at ~24.8 days. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(at, fn) {
    let handle: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = () => {
      const delay = Math.max(0, at - Date.now());
      handle = setTimeout(() => {
        if (cancelled) return;
        if (Date.now() < at - 1) arm();
        else fn();
      }, Math.min(delay, 2_000_000_000));
      handle.unref?.();
    };
    arm();
    return () => {
      cancelled = true;
      if (handle) clearTimeout(handle);
    };
  },
};

/** A clock that moves only when told; timers fire (in time order) during advance(). */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = Date.UTC(2026, 0, 5, 9, 0, 0)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(at: number, fn: () => void): () => void {
    const id = ++this.seq;
    this.timers.set(id, { at, fn });
    return () => void this.timers.delete(id);
  }

  /** Moves time forward by ms, firing due timers in order (each sees now() = its own time). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      let nextId: number | undefined;
      let next: { at: number; fn: () => void } | undefined;
      for (const [id, tm] of this.timers) if (tm.at <= end && (!next || tm.at < next.at)) { next = tm; nextId = id; }
      if (!next || nextId === undefined) break;
      this.timers.delete(nextId);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  /** Number of armed timers (for tests). */
  get pending(): number {
    return this.timers.size;
  }
}
