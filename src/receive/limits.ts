/**
 * Counters shared by all connectors of the Receive service and kept across reloads: live
 * connections per connector and per source address, the message rate windows, and recent logon
 * failures per source (for MaxLogonFailures lock-out). In memory only.
 */
import { RateWindow } from '../policy/rate.js';

const LOGON_WINDOW_MS = 15 * 60_000;

export class SharedLimits {
  readonly rate = new RateWindow();
  readonly #byConnector = new Map<string, number>();
  readonly #bySource = new Map<string, number>();
  readonly #failures = new Map<string, number[]>();

  /** Registers a connection; returns the function that unregisters it. */
  open(connector: string, source: string): () => void {
    const sk = `${connector}|${source}`;
    this.#byConnector.set(connector, (this.#byConnector.get(connector) ?? 0) + 1);
    this.#bySource.set(sk, (this.#bySource.get(sk) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const a = (this.#byConnector.get(connector) ?? 1) - 1;
      if (a > 0) this.#byConnector.set(connector, a);
      else this.#byConnector.delete(connector);
      const b = (this.#bySource.get(sk) ?? 1) - 1;
      if (b > 0) this.#bySource.set(sk, b);
      else this.#bySource.delete(sk);
    };
  }

  connectionCounts(connector: string, source: string): { total: number; fromSource: number } {
    return { total: this.#byConnector.get(connector) ?? 0, fromSource: this.#bySource.get(`${connector}|${source}`) ?? 0 };
  }

  /** Records a failed logon; returns the failures from this source within the window. */
  recordLogonFailure(source: string, login: string, now = Date.now()): number {
    void login; // failures are counted per source; the login is only logged by the caller
    const list = (this.#failures.get(source) ?? []).filter((t) => t > now - LOGON_WINDOW_MS);
    list.push(now);
    this.#failures.set(source, list);
    if (this.#failures.size > 10_000) {
      for (const [k, v] of this.#failures) if (!v.some((t) => t > now - LOGON_WINDOW_MS)) this.#failures.delete(k);
    }
    return list.length;
  }

  logonLockedOut(source: string, maxLogonFailures: number, now = Date.now()): boolean {
    if (maxLogonFailures <= 0) return false;
    return (this.#failures.get(source) ?? []).filter((t) => t > now - LOGON_WINDOW_MS).length >= maxLogonFailures;
  }
}
