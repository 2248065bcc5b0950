import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatMailDate, parsePickupFile, type ParseContext } from '../../../src/pickup/parse.js';

const NOW = new Date('2026-11-23T18:46:47Z');
function ctx(over: Partial<ParseContext> & { text?: string } = {}): ParseContext {
  return { kind: 'pickup', limits: { maxHeaderSize: 65536, maxRecipients: 100 }, fileSize: Buffer.byteLength(over.text ?? ''), eightBit: false, now: NOW, fqdn: 'mx.contoso.com', uniqueId: 'U1', ...over };
}
function parse(text: string, over: Partial<ParseContext> = {}) {
  return parsePickupFile(Buffer.from(text), ctx({ text, ...over }));
}

test('formatMailDate', () => assert.equal(formatMailDate(NOW), 'Mon, 23 Nov 2026 18:46:47 +0000'));

describe('pickup envelope from headers', () => {
  const cases: [string, string, string | null, string[]][] = [
    ['From and To', 'From: Ann <ann@contoso.com>\r\nTo: bob@fabrikam.com\r\n\r\nhi\r\n', 'ann@contoso.com', ['bob@fabrikam.com']],
    ['Sender wins over From', 'From: a@x.com, b@x.com\r\nSender: s@x.com\r\nTo: t@y.com\r\n\r\n', 's@x.com', ['t@y.com']],
    ['To, Cc, Bcc, deduplicated', 'From: a@x.com\r\nTo: t@y.com, "U" <u@y.com>\r\nCc: T@Y.com, v@y.com\r\nBcc: w@y.com\r\n\r\nb', 'a@x.com', ['t@y.com', 'u@y.com', 'v@y.com', 'w@y.com']],
    ['group syntax', 'From: a@x.com\r\nTo: Team: t@y.com, u@y.com;\r\n\r\n', 'a@x.com', ['t@y.com', 'u@y.com']],
    ['LF line ends', 'From: a@x.com\nTo: t@y.com\n\nbody\n', 'a@x.com', ['t@y.com']],
    ['headers only, no body', 'From: a@x.com\r\nTo: t@y.com\r\n', 'a@x.com', ['t@y.com']],
  ];
  for (const [name, text, sender, rcpts] of cases) {
    test(name, () => {
      const r = parse(text);
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.equal(r.envelope.mailFrom, sender);
      assert.deepEqual(r.envelope.recipients.map((x) => x.address), rcpts);
    });
  }
});

describe('pickup header rewriting', () => {
  const text =
    'Received: from a by b\r\nResent-From: r@x.com\r\nX-MS-Exchange-Organization-SCL: -1\r\nFrom: a@x.com\r\nTo: t@y.com\r\nBcc: secret@y.com\r\nSubject: Hi\r\nMessage-ID: <m1@x>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n';
  const r = parse(text);
  test('removes Received, Resent-*, Bcc and organization headers; keeps the rest', () => {
    assert.ok(r.ok);
    assert.equal(r.header, 'From: a@x.com\r\nTo: t@y.com\r\nSubject: Hi\r\nMessage-ID: <m1@x>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n');
    assert.equal(text.slice(r.bodyOffset), 'body\r\n');
    assert.equal(r.subject, 'Hi');
    assert.match(r.received, /^Received: from localhost by mx\.contoso\.com with Mailyard Pickup;\r\n Mon, 23 Nov 2026 18:46:47 \+0000\r\n$/);
  });
  test('Bcc-only message gets "To: Undisclosed recipients:;", Message-ID and Date', () => {
    const b = parse('From: a@x.com\r\nBcc: w@y.com\r\n\r\n');
    assert.ok(b.ok);
    assert.equal(b.header, 'From: a@x.com\r\nTo: Undisclosed recipients:;\r\nMessage-ID: <U1@mx.contoso.com>\r\nDate: Mon, 23 Nov 2026 18:46:47 +0000\r\n\r\n');
  });
  test('8-bit content is declared 8BITMIME; UTF-8 addresses need SMTPUTF8', () => {
    const t = 'From: josé@x.com\r\nTo: t@y.com\r\n\r\nçà\r\n';
    const u = parsePickupFile(Buffer.from(t), ctx({ text: t, eightBit: true }));
    assert.ok(u.ok);
    assert.equal(u.envelope.body, '8BITMIME');
    assert.equal(u.envelope.smtputf8, true);
    assert.equal(u.envelope.mailFrom, 'josé@x.com');
  });
});

describe('pickup: bad files', () => {
  const cases: [string, string, Partial<ParseContext>, RegExp][] = [
    ['no recipients', 'From: a@x.com\r\nSubject: x\r\n\r\n', {}, /no recipient/],
    ['no sender', 'To: t@y.com\r\n\r\n', {}, /no sender/],
    ['several From without Sender', 'From: a@x.com, b@x.com\r\nTo: t@y.com\r\n\r\n', {}, /several addresses/],
    ['two Sender addresses', 'Sender: a@x.com, b@x.com\r\nTo: t@y.com\r\n\r\n', {}, /more than one/],
    ['not mail', 'hello, this is just text\r\nand more\r\n', {}, /not a mail message/],
    ['too many recipients', 'From: a@x.com\r\nTo: a@y.com, b@y.com, c@y.com\r\n\r\n', { limits: { maxHeaderSize: 65536, maxRecipients: 2 } }, /more than the limit of 2/],
    ['header block over the limit', `From: a@x.com\r\nTo: t@y.com\r\nX-Pad: ${'x'.repeat(200)}\r\n\r\nbody`, { limits: { maxHeaderSize: 100, maxRecipients: 100 } }, /larger than 100/],
    ['NUL in the headers', 'From: a@x.com\r\nTo: t@y.com\u0000\r\n\r\n', {}, /NUL/],
    ['empty header block', '\r\nbody', {}, /no header fields/],
  ];
  for (const [name, text, over, reason] of cases) {
    test(name, () => {
      const r = parse(text, over);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, reason);
    });
  }
  test('header limit counts only what was read: a big file without a blank line is bad', () => {
    const text = `From: a@x.com\r\nTo: t@y.com\r\nX: ${'y'.repeat(300)}`;
    const r = parsePickupFile(Buffer.from(text).subarray(0, 104), ctx({ text, limits: { maxHeaderSize: 100, maxRecipients: 100 } }));
    assert.equal(r.ok, false);
  });
});

describe('replay files', () => {
  test('envelope from X-Sender / X-Receiver, which are removed; To is ignored', () => {
    const text = 'X-Sender: <bob@fabrikam.com> BODY=7bit RET=HDRS ENVID=12345ABCD\r\nX-Receiver: <mary@contoso.com> NOTIFY=NEVER ORcpt=mary@contoso.com\r\nX-Receiver: <joe@contoso.com>\r\nFrom: other@x.com\r\nTo: nobody@x.com\r\nBcc: hidden@x.com\r\nX-MS-Exchange-Organization-SCL: 5\r\nReceived: from a by b\r\nMessage-ID: <r@x>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nbody';
    const r = parse(text, { kind: 'replay' });
    assert.ok(r.ok, r.ok ? '' : r.reason);
    assert.equal(r.envelope.mailFrom, 'bob@fabrikam.com');
    assert.deepEqual(r.envelope.recipients, [{ address: 'mary@contoso.com', notify: [], orcpt: 'mary@contoso.com' }, { address: 'joe@contoso.com' }]);
    assert.equal(r.envelope.ret, 'HDRS');
    assert.equal(r.envelope.envid, '12345ABCD');
    assert.equal(r.header, 'From: other@x.com\r\nTo: nobody@x.com\r\nReceived: from a by b\r\nMessage-ID: <r@x>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n');
    assert.match(r.received, /with Mailyard Replay/);
  });
  test('trusted X-CreatedBy keeps organization headers', () => {
    const r = parse('X-Sender: <>\r\nX-Receiver: <m@c.com>\r\nX-CreatedBy: MSExchange15\r\nX-MS-Exchange-Organization-SCL: 5\r\nMessage-ID: <a@b>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n', { kind: 'replay' });
    assert.ok(r.ok);
    assert.equal(r.envelope.mailFrom, null);
    assert.match(r.header, /X-MS-Exchange-Organization-SCL: 5/);
  });
  test('a replay file without the envelope block is bad', () => {
    const r = parse('From: a@x.com\r\nTo: t@y.com\r\n\r\n', { kind: 'replay' });
    assert.equal(r.ok, false);
  });
  test('replay ignores the pickup recipient limit', () => {
    const r = parse('X-Sender: <a@x.com>\r\nX-Receiver: <a@y.com>\r\nX-Receiver: <b@y.com>\r\nX-Receiver: <c@y.com>\r\n\r\n', { kind: 'replay', limits: { maxHeaderSize: 65536, maxRecipients: 1 } });
    assert.ok(r.ok);
    assert.equal(r.envelope.recipients.length, 3);
  });
});
