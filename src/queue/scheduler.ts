/**
 * When to try again, when to warn and when to give up: Exchange's retry ladder (reference 4.2) as
 * pure functions of counts, times and policy. Time is always a parameter (ms since the epoch).
 *
 * Ladder after a failed connection to a next hop (the n-th consecutive failure, n >= 1):
 *   n <= queueGlitchRetryCount                       -> queueGlitchRetryInterval
 *   n <= glitch + transientFailureRetryCount         -> transientFailureRetryInterval
 *   later                                            -> outboundConnectionFailureRetryInterval
 * A message-level transient failure (4xx for a recipient while the connection worked) waits
 * messageRetryInterval. Delay DSN: once, when still undelivered after delayNotificationTimeout
 * (and only if that is before expiry). Expiry: messageExpirationTimeout after receipt.
 */
import type { Config } from '../config/defaults.js';

export interface RetryPolicy {
  readonly queueGlitchRetryCount: number;
  readonly queueGlitchRetryInterval: number;
  readonly transientFailureRetryCount: number;
  readonly transientFailureRetryInterval: number;
  readonly outboundConnectionFailureRetryInterval: number;
  readonly messageRetryInterval: number;
  readonly messageExpirationTimeout: number;
  readonly delayNotificationTimeout: number;
}

export function retryPolicyOf(ts: Config['transportService']): RetryPolicy {
  return {
    queueGlitchRetryCount: ts.queueGlitchRetryCount,
    queueGlitchRetryInterval: ts.queueGlitchRetryInterval,
    transientFailureRetryCount: ts.transientFailureRetryCount,
    transientFailureRetryInterval: ts.transientFailureRetryInterval,
    outboundConnectionFailureRetryInterval: ts.outboundConnectionFailureRetryInterval,
    messageRetryInterval: ts.messageRetryInterval,
    messageExpirationTimeout: ts.messageExpirationTimeout,
    delayNotificationTimeout: ts.delayNotificationTimeout,
  };
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  queueGlitchRetryCount: 4,
  queueGlitchRetryInterval: 60_000,
  transientFailureRetryCount: 6,
  transientFailureRetryInterval: 300_000,
  outboundConnectionFailureRetryInterval: 600_000,
  messageRetryInterval: 900_000,
  messageExpirationTimeout: 2 * 86_400_000,
  delayNotificationTimeout: 4 * 3_600_000,
};

export type FailureScope = 'connection' | 'message';

/** Wait after the n-th consecutive failure (n >= 1). */
export function retryDelay(failures: number, scope: FailureScope, p: RetryPolicy): number {
  if (scope === 'message') return p.messageRetryInterval;
  const n = Math.max(1, Math.floor(failures));
  if (n <= p.queueGlitchRetryCount) return p.queueGlitchRetryInterval;
  if (n <= p.queueGlitchRetryCount + p.transientFailureRetryCount) return p.transientFailureRetryInterval;
  return p.outboundConnectionFailureRetryInterval;
}

export function expiresAt(receivedAt: number, p: RetryPolicy): number {
  return receivedAt + p.messageExpirationTimeout;
}

export function isExpired(receivedAt: number, now: number, p: RetryPolicy): boolean {
  return now >= expiresAt(receivedAt, p);
}

/** The next attempt, never later than expiry (so the expiry NDR is not late). */
export function nextAttemptAt(failures: number, scope: FailureScope, now: number, receivedAt: number, p: RetryPolicy): number {
  return Math.min(now + retryDelay(failures, scope, p), expiresAt(receivedAt, p));
}

/** When the delay DSN becomes due, or undefined when it never will (timeout not before expiry). */
export function delayDsnAt(receivedAt: number, p: RetryPolicy): number | undefined {
  if (!Number.isFinite(p.delayNotificationTimeout) || p.delayNotificationTimeout >= p.messageExpirationTimeout) return undefined;
  return receivedAt + p.delayNotificationTimeout;
}

export function delayDsnDue(receivedAt: number, now: number, alreadySent: boolean, p: RetryPolicy): boolean {
  if (alreadySent) return false;
  const at = delayDsnAt(receivedAt, p);
  return at !== undefined && now >= at && !isExpired(receivedAt, now, p);
}
