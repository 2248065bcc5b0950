import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { DAEMON_INTERRUPT_BUDGET, daemonV8Flags } from '../../../src/platform/v8-tuning.js';

describe('V8 tuning for the daemon', () => {
  test('the daemon lowers the interrupt budget unless the administrator set one', () => {
    assert.deepEqual(daemonV8Flags(['--max-semi-space-size=4'], '--heap-growing-percent=100'), [`--interrupt-budget=${DAEMON_INTERRUPT_BUDGET}`]);
    assert.deepEqual(daemonV8Flags(['--interrupt-budget=100000'], undefined), []);
    assert.deepEqual(daemonV8Flags([], '--max-semi-space-size=4 --interrupt_budget=5000'), []);
    assert.deepEqual(daemonV8Flags(['--interrupt-budget-for-feedback-allocation=900'], undefined), [`--interrupt-budget=${DAEMON_INTERRUPT_BUDGET}`]);
  });

  test('this Node accepts the flag (a Node whose V8 dropped it would print "unrecognized flag" at every start)', () => {
    const r = spawnSync(process.execPath, ['-e', `require('node:v8').setFlagsFromString('--interrupt-budget=${DAEMON_INTERRUPT_BUDGET}'); console.log('ok')`], { encoding: 'utf8' });
    assert.equal(r.stdout.trim(), 'ok');
    assert.equal(r.stderr, '');
  });
});
