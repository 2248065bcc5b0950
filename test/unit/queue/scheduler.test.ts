import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RETRY_POLICY as P, retryDelay, isExpired, delayDsnDue, nextAttemptAt, delayDsnAt } from '../../../src/queue/scheduler.js';

const MIN = 60_000;

describe('retry ladder (defaults: 4 x 1m, 6 x 5m, then 10m)', () => {
  const table: [number, number][] = [
    [1, 1 * MIN], [4, 1 * MIN], [5, 5 * MIN], [10, 5 * MIN], [11, 10 * MIN], [50, 10 * MIN],
  ];
  for (const [n, want] of table) {
    test(`connection failure #${n} waits ${want / MIN} min`, () => assert.equal(retryDelay(n, 'connection', P), want));
  }
  test('a message-level 4xx waits messageRetryInterval', () => assert.equal(retryDelay(1, 'message', P), 15 * MIN));
  test('transientFailureRetryCount 0 goes straight from glitch retries to the outbound interval', () => {
    const p = { ...P, transientFailureRetryCount: 0 };
    assert.equal(retryDelay(4, 'connection', p), MIN);
    assert.equal(retryDelay(5, 'connection', p), 10 * MIN);
  });
  test('no glitch retries: the first failure waits the transient interval', () => {
    assert.equal(retryDelay(1, 'connection', { ...P, queueGlitchRetryCount: 0 }), 5 * MIN);
  });
  test('the next attempt is never after expiry', () => {
    const received = 0;
    const now = P.messageExpirationTimeout - MIN / 2;
    assert.equal(nextAttemptAt(20, 'connection', now, received, P), P.messageExpirationTimeout);
  });
});

describe('expiry and delay notice', () => {
  const t0 = 1_700_000_000_000;
  test('not expired one ms before 2 days, expired at 2 days', () => {
    assert.equal(isExpired(t0, t0 + 2 * 86_400_000 - 1, P), false);
    assert.equal(isExpired(t0, t0 + 2 * 86_400_000, P), true);
  });
  test('the delay DSN is due at 4 h, once', () => {
    assert.equal(delayDsnDue(t0, t0 + 4 * 3_600_000 - 1, false, P), false);
    assert.equal(delayDsnDue(t0, t0 + 4 * 3_600_000, false, P), true);
    assert.equal(delayDsnDue(t0, t0 + 5 * 3_600_000, true, P), false);
  });
  test('no delay DSN once expired, nor when the timeout is not before expiry', () => {
    assert.equal(delayDsnDue(t0, t0 + 3 * 86_400_000, false, P), false);
    assert.equal(delayDsnAt(t0, { ...P, delayNotificationTimeout: P.messageExpirationTimeout }), undefined);
  });
});
