/**
 * Outbound SMTP connections of one Send connector: idle sessions kept per next hop for reuse
 * (SmtpMaxMessagesPerConnection, ConnectionInactivityTimeOut) and the connection limits
 * (maxOutboundConnections overall, maxPerDomainOutboundConnections per next hop).
 *
 * Promises:
 * - a session goes back to the pool after a transaction while it has messages left and stays
 *   idle at most `idleMs`; then it is ended politely (QUIT); a peer hanging up first is noticed;
 * - open sessions (busy or idle) never exceed the limits; a caller over a limit waits (bounded by
 *   its AbortSignal) and is woken when a session ends or goes idle for its next hop; an idle
 *   session of another next hop is ended to make room when the overall limit is the obstacle.
 */
import type { SmtpSession } from './session.js';

interface Idle {
  readonly session: SmtpSession;
  readonly timer: NodeJS.Timeout;
  readonly since: number;
}

export type Acquired = { readonly kind: 'pooled'; readonly session: SmtpSession } | { readonly kind: 'slot' } | { readonly kind: 'aborted' };

export interface PoolLimits {
  readonly maxIdlePerKey: number;
  readonly maxTotal: number;
  readonly maxPerKey: number;
}

export class SessionPool {
  private readonly idle = new Map<string, Idle[]>();
  private readonly open = new Map<string, number>();
  private total = 0;
  private waiters: (() => void)[] = [];
  private seq = 0;

  constructor(private readonly limits: PoolLimits) {}

  /** A pooled session for this next hop, or a slot to open a new one, or 'aborted'. */
  async acquire(key: string, signal: AbortSignal): Promise<Acquired> {
    for (;;) {
      if (signal.aborted) return { kind: 'aborted' };
      const pooled = this.take(key);
      if (pooled) return { kind: 'pooled', session: pooled };
      const perKey = this.open.get(key) ?? 0;
      if (this.total < this.limits.maxTotal && perKey < this.limits.maxPerKey) {
        this.total++;
        this.open.set(key, perKey + 1);
        return { kind: 'slot' };
      }
      if (perKey < this.limits.maxPerKey) this.evictOther(key);
      await this.change(signal);
    }
  }

  /** Gives back a slot whose session could not be opened. */
  releaseSlot(key: string): void {
    this.total = Math.max(0, this.total - 1);
    const n = (this.open.get(key) ?? 1) - 1;
    if (n > 0) this.open.set(key, n);
    else this.open.delete(key);
    this.notify();
  }

  /** A session opened on a slot: the slot is released when the session ends. */
  adopt(key: string, session: SmtpSession): void {
    session.whenEnded.then(
      () => this.releaseSlot(key),
      () => this.releaseSlot(key),
    );
  }

  /** The most recently used live idle session for this next hop, if any. */
  take(key: string): SmtpSession | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const entry = list.pop()!;
      clearTimeout(entry.timer);
      if (list.length === 0) this.idle.delete(key);
      if (entry.session.alive) return entry.session;
      entry.session.close();
    }
    return undefined;
  }

  /** Keeps the session when it is alive and has messages left; otherwise ends it. */
  put(key: string, session: SmtpSession, maxMessages: number, idleMs: number): void {
    const list = this.idle.get(key) ?? [];
    if (!session.alive || session.messages >= maxMessages || list.length >= this.limits.maxIdlePerKey || !(idleMs > 0)) {
      session.quit();
      return;
    }
    const timer = setTimeout(() => this.expire(key, session), Math.min(idleMs, 2_147_000_000));
    timer.unref();
    list.push({ session, timer, since: this.seq++ });
    this.idle.set(key, list);
    session.onEnd(() => this.forget(key, session));
    this.notify();
  }

  /** Idle sessions held. */
  get idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** Open sessions (busy or idle). */
  get openCount(): number {
    return this.total;
  }

  /** Ends every idle session (QUIT) and wakes every waiter. */
  closeAll(): void {
    for (const [key, list] of [...this.idle]) {
      for (const e of list) {
        clearTimeout(e.timer);
        e.session.quit();
      }
      this.idle.delete(key);
    }
    this.notify();
  }

  private expire(key: string, session: SmtpSession): void {
    if (this.forget(key, session)) session.quit();
  }

  private forget(key: string, session: SmtpSession): boolean {
    const list = this.idle.get(key);
    if (!list) return false;
    const i = list.findIndex((e) => e.session === session);
    if (i < 0) return false;
    clearTimeout(list[i]!.timer);
    list.splice(i, 1);
    if (list.length === 0) this.idle.delete(key);
    return true;
  }

  /** Ends the longest-idle session of another next hop, to free a slot under the overall limit. */
  private evictOther(key: string): void {
    let oldest: { key: string; entry: Idle } | undefined;
    for (const [k, list] of this.idle) {
      if (k === key) continue;
      for (const entry of list) if (!oldest || entry.since < oldest.entry.since) oldest = { key: k, entry };
    }
    if (oldest && this.forget(oldest.key, oldest.entry.session)) oldest.entry.session.quit();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const wake of w) wake();
  }

  private change(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
