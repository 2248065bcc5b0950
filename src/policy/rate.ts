/**
 * A sliding one-minute window of message counts per source (MessageRateLimit). Holds state but
 * does no I/O: the time is always a parameter. Entries older than the window are pruned as they
 * are touched, and the whole map when it grows past a bound.
 */
const WINDOW_MS = 60_000;

export class RateWindow {
  readonly #hits = new Map<string, number[]>();
  constructor(private readonly windowMs = WINDOW_MS) {}

  /** Counts one message for `source` at `now` unless the limit is reached; returns whether it was allowed. */
  take(source: string, limit: number, now: number): boolean {
    if (!Number.isFinite(limit)) return true;
    const list = (this.#hits.get(source) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length >= limit) {
      this.#hits.set(source, list);
      return false;
    }
    list.push(now);
    this.#hits.set(source, list);
    if (this.#hits.size > 10_000) this.prune(now);
    return true;
  }

  prune(now: number): void {
    for (const [k, v] of this.#hits) {
      const kept = v.filter((t) => t > now - this.windowMs);
      if (kept.length) this.#hits.set(k, kept);
      else this.#hits.delete(k);
    }
  }
}
