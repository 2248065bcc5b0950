import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listenerSpecs, parseListenBinding } from '../../../src/policy/bindings.js';

const c = (bindings: string[], enabled = true) => ({ enabled, bindings });

test('listeners: one per distinct binding; a wildcard absorbs specific bindings of its family and port', () => {
  const specs = listenerSpecs([c(['0.0.0.0:25', '[::]:25']), c(['192.0.2.10:25']), c(['127.0.0.1:2525', '[::1]:2525']), c(['10.0.0.1:587'], false)]);
  assert.deepEqual(
    specs.map((s) => [s.host, s.port, s.family, s.wildcard, s.bindings]),
    [
      ['0.0.0.0', 25, 4, true, ['0.0.0.0:25', '192.0.2.10:25']],
      ['::', 25, 6, true, ['[::]:25']],
      ['127.0.0.1', 2525, 4, false, ['127.0.0.1:2525']],
      ['::1', 2525, 6, false, ['[::1]:2525']],
    ],
  );
});

test('listeners: connectors sharing a binding share a listener; port 0 bindings are never merged into a wildcard', () => {
  const specs = listenerSpecs([c(['127.0.0.1:0']), c(['127.0.0.1:0']), c(['0.0.0.0:0'])]);
  assert.deepEqual(specs.map((s) => [s.key, s.wildcard]), [['127.0.0.1|0', false], ['0.0.0.0|0', true]]);
});

test('bindings parse like Exchange writes them, port 0 allowed', () => {
  assert.deepEqual(parseListenBinding('[::]:25'), { text: '[::]:25', address: '::', family: 6, port: 25, wildcard: true });
  assert.equal((parseListenBinding('127.0.0.1:0') as { port: number }).port, 0);
  assert.ok('error' in parseListenBinding('localhost:25'));
  assert.ok('error' in parseListenBinding('1.2.3.4:70000'));
});
