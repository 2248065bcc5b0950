import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admitsSender, describePressure, evaluatePressure, NORMAL, type BackPressureSettings, type PressureState } from '../../../src/policy/back-pressure.js';

const MB = 1024 * 1024;
const settings: BackPressureSettings = { enabled: true, minimumFreeDiskSpace: 100 * MB, maxQueuedMessages: 1000 };

/** Feeds readings one after the other (each check sees the previous state) and returns the levels. */
function walk(readings: Array<{ free?: number; queued?: number }>, s: BackPressureSettings = settings): string[] {
  let state: PressureState = NORMAL;
  return readings.map((r) => {
    state = evaluatePressure({ freeDiskBytes: r.free === undefined ? undefined : r.free * MB, queuedMessages: r.queued ?? 0 }, s, state);
    return state.level;
  });
}

describe('back pressure levels', () => {
  test('disk space: Medium below twice the minimum, High below it; leaving a level needs a margin', () => {
    // free MB:          500       199       150       99      110     124     126       240       251
    assert.deepEqual(walk([{ free: 500 }, { free: 199 }, { free: 150 }, { free: 99 }, { free: 110 }, { free: 124 }, { free: 126 }, { free: 240 }, { free: 251 }]), [
      'Normal', 'Medium', 'Medium', 'High', 'High', 'High', 'Medium', 'Medium', 'Normal',
    ]);
  });

  test('queue length: Medium from 75%, High from 100%; High is left below 90%, Medium below 60%', () => {
    assert.deepEqual(walk([{ free: 1e6, queued: 700 }, { free: 1e6, queued: 750 }, { free: 1e6, queued: 1000 }, { free: 1e6, queued: 950 }, { free: 1e6, queued: 899 }, { free: 1e6, queued: 700 }, { free: 1e6, queued: 599 }]), [
      'Normal', 'Medium', 'High', 'High', 'Medium', 'Medium', 'Normal',
    ]);
  });

  test('the server level is the worst resource, and the summary names the resources under pressure', () => {
    const s = evaluatePressure({ freeDiskBytes: 150 * MB, queuedMessages: 1000 }, settings);
    assert.equal(s.level, 'High');
    assert.deepEqual(s.resources.map((r) => `${r.resource}=${r.level}`), ['DiskSpace=Medium', 'QueueLength=High']);
    assert.match(describePressure(s), /^High \(DiskSpace Medium: 150 MB free .*; QueueLength High: 1000 messages queued/);
    assert.equal(describePressure(evaluatePressure({ freeDiskBytes: 1e12, queuedMessages: 0 }, settings)), 'Normal');
  });

  test('free space just under a threshold never prints as the threshold itself', () => {
    const s = evaluatePressure({ freeDiskBytes: 99.6 * MB, queuedMessages: 0 }, settings);
    assert.equal(s.level, 'High');
    assert.match(describePressure(s), /DiskSpace High: 99 MB free on the spool's file system \(Medium below 200 MB, High below 100 MB\)/);
  });

  test('an unreadable disk keeps the last disk level instead of guessing', () => {
    assert.deepEqual(walk([{ free: 50 }, {}, {}, { free: 500 }]), ['High', 'High', 'High', 'Normal']);
    assert.deepEqual(walk([{}, { free: 500 }]), ['Normal', 'Normal']);
  });

  test('disabled, unlimited queue or a zero minimum turn the resource off', () => {
    assert.deepEqual(walk([{ free: 1, queued: 1e9 }], { ...settings, enabled: false }), ['Normal']);
    assert.deepEqual(walk([{ free: 1e6, queued: 1e9 }], { ...settings, maxQueuedMessages: Number.POSITIVE_INFINITY }), ['Normal']);
    assert.deepEqual(walk([{ free: 0 }], { ...settings, minimumFreeDiskSpace: 0 }), ['Normal']);
    assert.deepEqual(walk([{ free: 0 }], { ...settings, minimumFreeDiskSpace: Number.POSITIVE_INFINITY }), ['Normal']);
  });

  test('who may start a transaction at each level', () => {
    for (const p of ['anonymous', 'user', 'server', 'partner', 'externallySecured'] as const) {
      assert.equal(admitsSender('Normal', p), true, p);
      assert.equal(admitsSender('High', p), false, p);
      assert.equal(admitsSender('Medium', p), p !== 'anonymous', p);
    }
  });
});
