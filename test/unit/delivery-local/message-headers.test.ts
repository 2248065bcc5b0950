import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyHttpStatus } from '../../../src/delivery/http.js';
import { outcomeFromReply, replyFromLines } from '../../../src/delivery/lmtp.js';
import { lmtpTargetOf } from '../../../src/delivery/mailbox.js';
import type { Envelope } from '../../../src/model/envelope.js';
import {
  fieldValue,
  findHeaderEnd,
  formatEnvelopeHeaders,
  isFirewalledHeader,
  joinFields,
  parseEnvelopeHeaders,
  parseHeaderFields,
} from '../../../src/model/message-headers.js';

describe('header block splitting', () => {
  const cases: [string, string, { headerEnd: number; bodyStart: number } | undefined][] = [
    ['CRLF', 'A: 1\r\nB: 2\r\n\r\nbody', { headerEnd: 12, bodyStart: 14 }],
    ['LF', 'A: 1\nB: 2\n\nbody', { headerEnd: 10, bodyStart: 11 }],
    ['no body separator', 'A: 1\r\nB: 2\r\n', undefined],
    ['empty header block', '\r\nbody', { headerEnd: 0, bodyStart: 2 }],
    ['empty header block, LF', '\nbody', { headerEnd: 0, bodyStart: 1 }],
    ['LF header lines, then a CRLF empty line', 'A: 1\nB: 2\n\r\nbody', { headerEnd: 10, bodyStart: 12 }],
    ['the first empty line wins', 'A: 1\r\n\r\nB\n\nC', { headerEnd: 6, bodyStart: 8 }],
    ['no empty line, only a line end at the very end', 'A: 1\r\nB: 2\n', undefined],
    ['an empty line split across the end', 'A: 1\r\n\r', undefined],
  ];
  for (const [name, text, expected] of cases) test(name, () => assert.deepEqual(findHeaderEnd(Buffer.from(text)), expected));
  test('the limit bounds the search', () => {
    const text = Buffer.from('A: 1\r\nB: 2\r\n\r\nbody');
    assert.deepEqual(findHeaderEnd(text, 14), { headerEnd: 12, bodyStart: 14 });
    assert.equal(findHeaderEnd(text, 13), undefined);
  });

  test('folded fields and values', () => {
    const fields = parseHeaderFields('Subject: a\r\n b\r\nTo: x@y\r\n');
    assert.ok(fields);
    assert.equal(fields.length, 2);
    assert.equal(fieldValue(fields[0]!), 'a b');
    assert.equal(joinFields(fields), 'Subject: a\r\n b\r\nTo: x@y\r\n');
    assert.equal(joinFields(parseHeaderFields('A: 1\nB: 2\n')!), 'A: 1\r\nB: 2\r\n');
  });
  const notMail: [string, string][] = [
    ['prose line', 'hello world\r\n'],
    ['leading continuation', ' x\r\nA: 1\r\n'],
    ['binary-ish name', 'A B: 1\r\n'],
  ];
  for (const [name, text] of notMail) test(`not a header block: ${name}`, () => assert.equal(parseHeaderFields(text), undefined));
});

describe('header firewall', () => {
  const cases: [string, boolean][] = [
    ['X-MS-Exchange-Organization-SCL', true],
    ['x-ms-exchange-forest-rulesexecuted', true],
    ['X-Mailyard-Organization-AuthAs', true],
    ['X-Mailyard-Forest-Foo', true],
    ['Received', false],
    ['X-MS-Exchange-Transport-CrossTenantHeadersStamped', false],
    ['X-Mailyard-Sender', false],
  ];
  for (const [name, expected] of cases) test(name, () => assert.equal(isFirewalledHeader(name), expected));
});

describe('envelope headers (Replay format)', () => {
  const envelope: Envelope = {
    mailFrom: 'bob@fabrikam.com',
    recipients: [
      { address: 'mary@contoso.com', notify: [], orcpt: 'rfc822;mary@contoso.com' },
      { address: 'joe@contoso.com', notify: ['SUCCESS', 'FAILURE'] },
      { address: 'ann@contoso.com' },
    ],
    body: '8BITMIME',
    smtputf8: false,
    ret: 'HDRS',
    envid: 'ab c+d',
  };
  test('format', () => {
    assert.equal(
      formatEnvelopeHeaders(envelope),
      'X-Sender: <bob@fabrikam.com> BODY=8BITMIME RET=HDRS ENVID=ab+20c+2Bd\r\n' +
        'X-Receiver: <mary@contoso.com> NOTIFY=NEVER ORCPT=rfc822;mary@contoso.com\r\n' +
        'X-Receiver: <joe@contoso.com> NOTIFY=SUCCESS,FAILURE\r\n' +
        'X-Receiver: <ann@contoso.com>\r\n',
    );
  });
  test('round trip', () => {
    const fields = parseHeaderFields(formatEnvelopeHeaders(envelope) + 'From: b@f\r\nTo: m@c\r\n')!;
    const r = parseEnvelopeHeaders(fields);
    assert.ok(r.ok);
    assert.deepEqual(r.envelope, envelope);
    assert.deepEqual(r.rest.map((f) => f.name), ['From', 'To']);
  });
  test('null sender and Exchange spelling', () => {
    const r = parseEnvelopeHeaders(parseHeaderFields('X-Sender: <>\r\nX-Receiver: <mary@contoso.com> NOTIFY=NEVER ORcpt=mary@contoso.com\r\nX-CreatedBy: MSExchange15\r\nSubject: x\r\n')!);
    assert.ok(r.ok);
    assert.equal(r.envelope.mailFrom, null);
    assert.deepEqual(r.envelope.recipients, [{ address: 'mary@contoso.com', notify: [], orcpt: 'mary@contoso.com' }]);
    assert.equal(r.injected.length, 3);
  });
  const bad: [string, string, RegExp][] = [
    ['no X-Sender', 'X-Receiver: <a@b>\r\nSubject: x\r\n', /no X-Sender/],
    ['two X-Sender', 'X-Sender: <a@b>\r\nX-Sender: <c@d>\r\nX-Receiver: <a@b>\r\n', /more than one/],
    ['no X-Receiver', 'X-Sender: <a@b>\r\nSubject: x\r\n', /no X-Receiver/],
    ['X-Receiver after the message headers', 'X-Sender: <a@b>\r\nSubject: x\r\nX-Receiver: <a@b>\r\n', /no X-Receiver/],
    ['X-Receiver without a domain', 'X-Sender: <a@b>\r\nX-Receiver: <nobody>\r\n', /unreadable X-Receiver/],
  ];
  for (const [name, text, reason] of bad) {
    test(`refused: ${name}`, () => {
      const r = parseEnvelopeHeaders(parseHeaderFields(text)!);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, reason);
    });
  }
});

describe('HTTP status → outcome', () => {
  const cases: [number, string, number | undefined][] = [
    [200, 'delivered', undefined],
    [202, 'delivered', undefined],
    [204, 'delivered', undefined],
    [301, 'deferred', undefined],
    [400, 'failed', 554],
    [401, 'failed', 550],
    [403, 'failed', 550],
    [404, 'failed', 554],
    [408, 'deferred', undefined],
    [413, 'failed', 552],
    [422, 'failed', 554],
    [429, 'deferred', undefined],
    [500, 'deferred', undefined],
    [503, 'deferred', undefined],
  ];
  for (const [status, kind, code] of cases) {
    test(`${status} → ${kind}`, () => {
      const o = classifyHttpStatus(status, 'X', 'said');
      assert.equal(o.kind, kind);
      if (code !== undefined && o.kind === 'failed') assert.equal(o.reply.code, code);
      if (o.kind !== 'delivered') assert.match(o.reply?.text ?? '', new RegExp(`HTTP ${status}`));
    });
  }
});

describe('LMTP replies', () => {
  test('single line with enhanced code', () => assert.deepEqual(replyFromLines(['250 2.0.0 <id> Saved']), { code: 250, enhanced: '2.0.0', text: '<id> Saved' }));
  test('multi-line', () => assert.deepEqual(replyFromLines(['250-host', '250-PIPELINING', '250 8BITMIME']), { code: 250, text: 'host\nPIPELINING\n8BITMIME' }));
  const cases: [string, string, string][] = [
    ['250 2.0.0 ok', 'delivered', ''],
    ['452 4.2.2 Mailbox full', 'deferred', 'size'],
    ['451 4.3.0 Temporary', 'deferred', 'recipient'],
    ['550 5.1.1 No such user', 'failed', 'recipient'],
    ['552 5.3.4 Too big', 'failed', 'size'],
  ];
  for (const [line, kind, category] of cases) {
    test(line, () => {
      const o = outcomeFromReply(replyFromLines([line]), 'h', 'data');
      assert.equal(o.kind, kind);
      if (o.kind !== 'delivered') assert.equal(o.category, category);
    });
  }
  test('target: socket wins, default port 24', () => {
    assert.deepEqual(lmtpTargetOf({ socket: '/run/dovecot/lmtp', host: 'x' }), { socket: '/run/dovecot/lmtp' });
    assert.deepEqual(lmtpTargetOf(undefined), { host: '127.0.0.1', port: 24 });
    assert.deepEqual(lmtpTargetOf({ host: '::1', port: 2424 }), { host: '::1', port: 2424 });
  });
});
