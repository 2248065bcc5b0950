import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NOTHING_SUSPENDED, parseSuspendedQueues, serializeSuspendedQueues, type SuspendedQueues } from '../../../src/queue/suspended-queues.js';

test('a saved state reads back the same', () => {
  const states: SuspendedQueues[] = [
    NOTHING_SUSPENDED,
    { submission: true, unreachable: false, queues: [] },
    { submission: false, unreachable: true, queues: [{ deliveryType: 'DnsConnectorDelivery', nextHopDomain: 'tailspin.example', connector: 'To Internet' }] },
    { submission: true, unreachable: true, queues: [{ deliveryType: 'SmtpDeliveryToMailbox', nextHopDomain: 'mailbox', connector: null }, { deliveryType: 'SmartHostConnectorDelivery', nextHopDomain: '[10.0.0.5]', connector: 'Relay' }] },
  ];
  for (const s of states) assert.deepEqual(parseSuspendedQueues(serializeSuspendedQueues(s)), { state: s });
});

test('damaged or foreign files read as nothing suspended, with the reason', () => {
  const cases: [string, RegExp][] = [
    ['', /not valid JSON/],
    ['{"submission":true', /not valid JSON/],
    ['[]', /not a v1/],
    ['{"v":2,"submission":true}', /not a v1/],
    ['null', /not a v1/],
  ];
  for (const [text, why] of cases) {
    const r = parseSuspendedQueues(text);
    assert.deepEqual(r.state, NOTHING_SUSPENDED, text);
    assert.match(r.error ?? '', why, text);
  }
});

test('invalid queue entries are dropped one by one; the rest still counts', () => {
  const r = parseSuspendedQueues(
    JSON.stringify({
      v: 1,
      submission: 'yes',
      unreachable: true,
      queues: [
        { deliveryType: 'DnsConnectorDelivery', nextHopDomain: 'a.example', connector: 'To Internet' },
        { deliveryType: 'Unreachable', nextHopDomain: 'Unreachable Domain', connector: null },
        { deliveryType: 'DnsConnectorDelivery', nextHopDomain: '', connector: null },
        { deliveryType: 'DnsConnectorDelivery', nextHopDomain: 'b.example', connector: 7 },
        'c.example',
      ],
    }),
  );
  assert.deepEqual(r.state, { submission: false, unreachable: true, queues: [{ deliveryType: 'DnsConnectorDelivery', nextHopDomain: 'a.example', connector: 'To Internet' }] });
  assert.match(r.error ?? '', /ignored invalid queue entries/);
});
