import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { applyResult, delayCheck, expireMessage, failRecipients, wantsDsn, ADMIN_REMOVED_REPLY } from '../../../src/queue/state.js';
import { DEFAULT_RETRY_POLICY as P } from '../../../src/queue/scheduler.js';
import type { MessageRecord } from '../../../src/queue/record.js';
import type { RecipientOutcome } from '../../../src/model/outcome.js';
import type { NextHopKey } from '../../../src/model/routing.js';
import type { MessageId } from '../../../src/model/ids.js';

const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const KEY: NextHopKey = { deliveryType: 'DnsConnectorDelivery', nextHopDomain: 'tailspin.example', connector: 'To Internet' };
const OTHER: NextHopKey = { deliveryType: 'SmtpDeliveryToMailbox', nextHopDomain: 'mailbox', connector: null };

function rec(over: Partial<MessageRecord> = {}): MessageRecord {
  return {
    v: 1, id: '0000000000000000AAAA' as MessageId, receivedAt: T0, mailFrom: 'ann@fabrikam.example', body: '8BITMIME', smtputf8: false,
    source: { kind: 'smtp' }, size: 100, hopCount: 1, categorized: true, delayNotified: false, poisonCount: 1, suspended: false, poisoned: false,
    recipients: [
      { address: 'a@tailspin.example', status: 'pending', attempts: 0, route: KEY },
      { address: 'b@tailspin.example', status: 'pending', attempts: 0, route: KEY, notify: [] },
      { address: 'c@contoso.com', status: 'pending', attempts: 0, route: OTHER },
    ],
    ...over,
  };
}

const ok: RecipientOutcome = { kind: 'delivered', reply: { code: 250, enhanced: '2.0.0', text: 'OK' } };
const temp: RecipientOutcome = { kind: 'deferred', reply: { code: 451, enhanced: '4.3.0', text: 'later' }, category: 'recipient', detail: 'x' };
const perm: RecipientOutcome = { kind: 'failed', reply: { code: 550, enhanced: '5.1.1', text: 'User unknown' }, category: 'recipient', detail: 'x' };
const kinds = (a: { actions: readonly { kind: string }[] }) => a.actions.map((x) => x.kind);

describe('applyResult', () => {
  test('only the batch recipients change; the other next hop is untouched', () => {
    const r = applyResult(rec(), KEY, ['a@tailspin.example', 'b@tailspin.example'], { outcomes: new Map([['a@tailspin.example', ok], ['b@tailspin.example', ok]]) }, T0 + 1000, P);
    assert.deepEqual(r.record.recipients.map((x) => x.status), ['delivered', 'delivered', 'pending']);
    assert.deepEqual(kinds(r), ['persist', 'track']);
    assert.equal(r.record.poisonCount, 0);
  });
  test('all terminal: remove, failure DSN only for recipients whose NOTIFY asks', () => {
    const r = applyResult(rec({ recipients: rec().recipients.slice(0, 2) }), KEY, ['a@tailspin.example', 'b@tailspin.example'], { outcomes: new Map([['a@tailspin.example', perm], ['b@tailspin.example', perm]]) }, T0, P);
    assert.deepEqual(kinds(r), ['dsn', 'remove', 'track']);
    const dsn = r.actions[0] as unknown as { recipients: { address: string; status: string; diagnostic?: string }[] };
    assert.deepEqual(dsn.recipients.map((x) => x.address), ['a@tailspin.example']);
    assert.equal(dsn.recipients[0]!.status, '5.1.1');
    assert.equal(dsn.recipients[0]!.diagnostic, '550 5.1.1 User unknown');
  });
  test('the null sender never gets a DSN', () => {
    const r = applyResult(rec({ mailFrom: null }), KEY, ['a@tailspin.example'], { outcomes: new Map([['a@tailspin.example', perm]]) }, T0, P);
    assert.ok(!kinds(r).includes('dsn'));
  });
  test('a missing outcome counts as deferred, never as failed', () => {
    const r = applyResult(rec(), KEY, ['a@tailspin.example'], { outcomes: new Map() }, T0 + 5, P);
    const a = r.record.recipients[0]!;
    assert.equal(a.status, 'pending');
    assert.equal(a.attempts, 1);
    assert.equal(a.nextAttemptAt, T0 + 5 + P.messageRetryInterval);
  });
  test('a connection failure follows the connection ladder', () => {
    const r = applyResult(rec(), KEY, ['a@tailspin.example'], { outcomes: new Map([['a@tailspin.example', temp]]), connectionFailure: true }, T0, P);
    assert.equal(r.record.recipients[0]!.nextAttemptAt, T0 + P.queueGlitchRetryInterval);
  });
  test('a deferral after expiry fails with 550 4.4.7 and an NDR', () => {
    const now = T0 + P.messageExpirationTimeout + 1;
    const r = applyResult(rec(), KEY, ['a@tailspin.example'], { outcomes: new Map([['a@tailspin.example', temp]]) }, now, P);
    assert.equal(r.record.recipients[0]!.finalReply, '550 4.4.7 QUEUE.Expired; message expired');
    assert.ok(kinds(r).includes('dsn'));
  });
  test('a delivered recipient stays delivered whatever comes later', () => {
    const first = applyResult(rec(), KEY, ['a@tailspin.example'], { outcomes: new Map([['a@tailspin.example', ok]]) }, T0, P).record;
    const second = applyResult(first, KEY, ['a@tailspin.example'], { outcomes: new Map([['a@tailspin.example', perm]]) }, T0 + 1, P).record;
    assert.equal(second.recipients[0]!.status, 'delivered');
  });
  test('NOTIFY=SUCCESS gives a success notice', () => {
    const r0 = rec({ recipients: [{ address: 'a@tailspin.example', status: 'pending', attempts: 0, route: KEY, notify: ['SUCCESS'] }] });
    const r = applyResult(r0, KEY, ['a@tailspin.example'], { outcomes: new Map([['a@tailspin.example', ok]]) }, T0, P);
    assert.equal((r.actions[0] as { dsnKind: string }).dsnKind, 'success');
  });
});

describe('time-driven changes', () => {
  test('delay notice once, for pending recipients wanting DELAY', () => {
    const now = T0 + P.delayNotificationTimeout;
    const d = delayCheck(rec(), now, P)!;
    assert.equal(d.record.delayNotified, true);
    const dsn = d.actions.find((a) => a.kind === 'dsn') as unknown as { recipients: { address: string }[] };
    assert.deepEqual(dsn.recipients.map((x) => x.address), ['a@tailspin.example', 'c@contoso.com']);
    assert.equal(delayCheck(d.record, now + 1, P), undefined);
  });
  test('expiry fails every pending recipient and removes the message', () => {
    assert.equal(expireMessage(rec(), T0 + 1000, P), undefined);
    const e = expireMessage(rec(), T0 + P.messageExpirationTimeout, P)!;
    assert.ok(e.record.recipients.every((r) => r.status === 'failed'));
    assert.deepEqual(kinds(e), ['dsn', 'remove', 'track']);
  });
  test('at expiry a recipient that waited in Unreachable gets 550 5.4.4 Unable to route, the others 4.4.7', () => {
    const UNREACH: NextHopKey = { deliveryType: 'Unreachable', nextHopDomain: 'Unreachable Domain', connector: null };
    const r0 = rec({ recipients: [{ address: 'a@tailspin.example', status: 'pending', attempts: 0, route: UNREACH }, { address: 'b@tailspin.example', status: 'pending', attempts: 2, route: KEY }] });
    const e = expireMessage(r0, T0 + P.messageExpirationTimeout, P)!;
    assert.deepEqual(e.record.recipients.map((r) => r.finalReply), ['550 5.4.4 Unable to route', '550 4.4.7 QUEUE.Expired; message expired']);
    assert.deepEqual(kinds(e), ['dsn', 'remove', 'track', 'track']);
    assert.equal((e.actions[0] as unknown as { recipients: unknown[] }).recipients.length, 2, 'one NDR names both recipients');
  });
  test('administrative removal without NDR sends no DSN', () => {
    const e = failRecipients(rec(), ADMIN_REMOVED_REPLY, T0, { withDsn: false });
    assert.ok(!kinds(e).includes('dsn'));
  });
});

describe('NOTIFY', () => {
  const table: [Parameters<typeof wantsDsn>[0], Parameters<typeof wantsDsn>[1], boolean][] = [
    [undefined, 'failure', true], [undefined, 'delay', true], [undefined, 'success', false],
    [[], 'failure', false], [['SUCCESS'], 'failure', false], [['SUCCESS', 'FAILURE'], 'success', true], [['DELAY'], 'delay', true],
  ];
  for (const [n, k, want] of table) test(`NOTIFY=${n === undefined ? '(default)' : n.length ? n.join(',') : 'NEVER'} ${k}: ${want}`, () => assert.equal(wantsDsn(n, k), want));
});

describe('delivery tracking: how the hop was protected', () => {
  const delivered = (session: Parameters<typeof applyResult>[3]['session']) =>
    applyResult(rec({ recipients: rec().recipients.slice(0, 1) }), KEY, ['a@tailspin.example'], { outcomes: new Map([['a@tailspin.example', ok]]), ...(session ? { session } : {}) }, T0, P)
      .actions.flatMap((a) => (a.kind === 'track' ? [a.event] : []))
      .find((e) => e.eventId === 'SEND');
  test('a TLS session: protocol, cipher, validation and the remote certificate', () => {
    const e = delivered({ host: 'mx1.tailspin.example', ip: '192.0.2.7', tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', authorized: true, peerCertificateSubject: 'CN=mx1.tailspin.example' } });
    assert.equal(e?.sourceContext, 'TLS=TLSv1.3;Cipher=TLS_AES_256_GCM_SHA384;CertificateValidated=true;RemoteCertificate=CN=mx1.tailspin.example');
    assert.equal(e?.serverHostname, 'mx1.tailspin.example');
  });
  test('a plaintext session says TLS=none; no session (local delivery) says nothing', () => {
    assert.equal(delivered({ host: 'mx1.tailspin.example' })?.sourceContext, 'TLS=none');
    assert.equal(delivered(undefined)?.sourceContext, undefined);
  });
});
