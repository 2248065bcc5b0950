import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { composeDsn, attachFullOriginal, type DsnInput } from '../../../src/queue/dsn.js';

// Golden files: test/fixtures/golden/dsn/<name>.eml. Regenerate ONLY with MAILYARD_UPDATE_GOLDEN=1.
const goldenDir = fileURLToPath(new URL('../../fixtures/golden/dsn/', import.meta.url));
const UPDATE = process.env.MAILYARD_UPDATE_GOLDEN === '1';

const original = Buffer.from(
  'Received: from client.fabrikam.example by mx.contoso.com\r\nFrom: Ann <ann@fabrikam.example>\r\nTo: julia@tailspin.example\r\nSubject: Quarterly figures\r\nMessage-ID: <q1@fabrikam.example>\r\n\r\nHello Julia,\r\nthe figures are attached.\r\n',
);

function base(over: Partial<DsnInput>): DsnInput {
  return {
    kind: 'failure',
    reportingMta: 'mx.contoso.com',
    from: 'postmaster@contoso.com',
    to: 'ann@fabrikam.example',
    recipients: [],
    originalSubject: 'Quarterly figures',
    originalMessageId: '<q1@fabrikam.example>',
    arrivalDate: new Date(Date.UTC(2026, 0, 5, 9, 0, 0)),
    now: new Date(Date.UTC(2026, 0, 5, 9, 5, 0)),
    original,
    originalIsHeadersOnly: false,
    boundary: '=_mailyard_TESTBOUNDARY',
    messageId: 'ABCDEF.0000000000@mx.contoso.com',
    ...over,
  };
}

function normalise(text: string, input: DsnInput): string {
  return text
    .split(input.boundary).join('{{BOUNDARY}}')
    .split(input.messageId).join('{{MESSAGE_ID}}')
    .replace(/(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d \+0000/g, '{{DATE}}');
}

function golden(name: string, input: DsnInput): string {
  const text = normalise(composeDsn(input).toString('utf8'), input);
  const path = `${goldenDir}${name}.eml`;
  if (UPDATE || !existsSync(path)) {
    if (!UPDATE) assert.fail(`golden file ${name}.eml is missing; run with MAILYARD_UPDATE_GOLDEN=1 to create it`);
    writeFileSync(path, text);
  }
  assert.equal(text, readFileSync(path, 'utf8'), `composed DSN differs from ${name}.eml (MAILYARD_UPDATE_GOLDEN=1 regenerates)`);
  return text;
}

const cases: { name: string; input: DsnInput; checks: RegExp[] }[] = [
  {
    name: 'failure-remote-550',
    input: base({
      envid: 'QF+2B2026',
      recipients: [{ address: 'julia@tailspin.example', orcpt: 'rfc822;julia@tailspin.example', action: 'failed', status: '5.1.1', diagnostic: '550 5.1.1 User unknown', remoteMta: 'mx1.tailspin.example', lastAttemptAt: Date.UTC(2026, 0, 5, 9, 4, 0) }],
    }),
    checks: [/Content-Type: multipart\/report; report-type=delivery-status;/, /Original-Envelope-Id: QF\+2026/, /Original-Recipient: rfc822; julia@tailspin\.example/, /Diagnostic-Code: smtp; 550 5\.1\.1 User unknown/, /the server mx1\.tailspin\.example replied: 550 5\.1\.1 User unknown/, /What to do: The address may be misspelled/, /Content-Type: message\/rfc822/, /the figures are attached/],
  },
  {
    name: 'failure-expired-hdrs',
    input: base({
      ret: 'HDRS',
      originalIsHeadersOnly: true,
      recipients: [{ address: 'julia@tailspin.example', action: 'failed', status: '4.4.7', diagnostic: '550 4.4.7 QUEUE.Expired; message expired', lastError: '451 4.4.0 connection refused by mx1.tailspin.example', lastAttemptAt: Date.UTC(2026, 0, 7, 9, 0, 0) }],
    }),
    checks: [/Status: 4\.4\.7/, /Last error: 451 4\.4\.0 connection refused/, /Content-Type: text\/rfc822-headers/],
  },
  {
    name: 'delay',
    input: base({
      kind: 'delay',
      originalIsHeadersOnly: true,
      retryUntil: new Date(Date.UTC(2026, 0, 7, 9, 0, 0)),
      recipients: [{ address: 'julia@tailspin.example', action: 'delayed', status: '4.4.7', lastError: '451 4.3.0 try again later', lastAttemptAt: Date.UTC(2026, 0, 5, 13, 0, 0) }],
    }),
    checks: [/Subject: Delivery delayed: Quarterly figures/, /Action: delayed/, /Will-Retry-Until: /, /you do not need to do\s+anything/],
  },
  {
    name: 'success-relayed',
    input: base({
      kind: 'success',
      originalIsHeadersOnly: true,
      recipients: [{ address: 'julia@tailspin.example', action: 'relayed', status: '2.0.0', diagnostic: '250 2.0.0 OK', remoteMta: 'relay.tailspin.example' }],
    }),
    checks: [/Action: relayed/, /does not send delivery notices/],
  },
];

describe('DSN composition (golden files)', () => {
  for (const c of cases) {
    test(c.name, () => {
      const text = golden(c.name, c.input);
      for (const re of c.checks) assert.match(text, re);
      assert.ok(!/[^\r]\n/.test(text), 'CRLF line endings only');
      assert.match(text, /\r\n--\{\{BOUNDARY\}\}--\r\n$/);
    });
  }
  test('header injection through the subject is neutralised', () => {
    const text = composeDsn(base({ originalSubject: 'hi\r\nBcc: evil@example.com', recipients: [{ address: 'a@b.example', action: 'failed', status: '5.0.0' }] })).toString();
    assert.doesNotMatch(text, /^Bcc:/m);
  });
});

describe('what is attached', () => {
  const table: [string, Parameters<typeof attachFullOriginal>, boolean][] = [
    ['failure, RET unset: whole message', ['failure', undefined, 100, 1000], true],
    ['failure, RET=HDRS: headers', ['failure', 'HDRS', 100, 1000], false],
    ['failure, too large: headers', ['failure', 'FULL', 2000, 1000], false],
    ['delay, RET unset: headers', ['delay', undefined, 100, 1000], false],
    ['success, RET=FULL: whole message', ['success', 'FULL', 100, 1000], true],
  ];
  for (const [name, args, want] of table) test(name, () => assert.equal(attachFullOriginal(...args), want));
});
