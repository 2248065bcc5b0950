import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateWindow } from '../../../src/policy/rate.js';

test('the message rate window allows `limit` messages per minute per source', () => {
  const w = new RateWindow();
  assert.equal(w.take('a', 2, 0), true);
  assert.equal(w.take('a', 2, 1000), true);
  assert.equal(w.take('a', 2, 2000), false);
  assert.equal(w.take('b', 2, 2000), true);
  assert.equal(w.take('a', 2, 60_001), true);
  assert.equal(w.take('a', Number.POSITIVE_INFINITY, 60_002), true);
});
