import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { classify, classifyReply, type SmtpStage } from '../../../src/delivery/classify.js';

type Row = readonly [reply: string, stage: SmtpStage | undefined, kind: 'delivered' | 'deferred' | 'failed', category: string];

// Replies as real servers send them (Gmail, Microsoft 365, Postfix, Exim, Yahoo, Sendmail, qmail).
const ROWS: readonly Row[] = [
  ['250 2.0.0 OK  1700000000 a1-20020a170906b0c100b009a1c7c0f0b8si1234567ejb.123 - gsmtp', 'message', 'delivered', 'other'],
  ['250 2.6.0 <a1b2@contoso.com> [InternalId=4294967310, Hostname=EX01.contoso.com] Queued mail for delivery', 'message', 'delivered', 'other'],
  ['250 Ok: queued as 4F2A19', 'message', 'delivered', 'other'],
  ['550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient\'s email address for typos or\n550 5.1.1 https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp', 'rcpt', 'failed', 'recipient'],
  ['550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', 'rcpt', 'failed', 'recipient'],
  ['550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table', 'rcpt', 'failed', 'recipient'],
  ['550 Unrouteable address', 'rcpt', 'failed', 'recipient'],
  ['553 sorry, that domain isn\'t in my list of allowed rcpthosts (#5.7.1)', 'rcpt', 'failed', 'recipient'],
  ['452 4.2.2 The email account that you tried to reach is over quota.', 'rcpt', 'deferred', 'recipient'],
  ['552 5.2.2 The email account that you tried to reach is over quota.', 'rcpt', 'failed', 'recipient'],
  ['450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.', 'rcpt', 'deferred', 'recipient'],
  ['451 4.7.1 Greylisting in action, please come back later', 'rcpt', 'deferred', 'policy'],
  ['450 4.7.1 Client host rejected: cannot find your hostname', 'rcpt', 'deferred', 'policy'],
  ['421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints', 'mail', 'deferred', 'policy'],
  ['421 4.3.2 Service not available, closing transmission channel', 'greeting', 'deferred', 'other'],
  ['421 Too many concurrent SMTP connections; please try again later.', 'greeting', 'deferred', 'connect'],
  ['554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org', 'rcpt', 'failed', 'policy'],
  ['550 5.7.606 Access denied, banned sending IP [192.0.2.1].', 'mail', 'failed', 'policy'],
  ['550 5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users', 'message', 'failed', 'policy'],
  ['552 5.3.4 Message size exceeds fixed maximum message size', 'mail', 'failed', 'size'],
  ['552 Message size exceeds maximum permitted', 'message', 'failed', 'size'],
  ['552 Too many recipients', 'rcpt', 'deferred', 'protocol'],
  ['452 4.5.3 Too many recipients', 'rcpt', 'deferred', 'protocol'],
  ['554 5.4.6 Hop count exceeded - possible mail loop', 'message', 'failed', 'loop'],
  ['550 5.4.14 Hop count exceeded - possible mail loop ATTR34', 'message', 'failed', 'loop'],
  ['554 5.6.0 Invalid message content, contains bare linefeeds', 'message', 'failed', 'protocol'],
  ['530 5.7.0 Must issue a STARTTLS command first', 'mail', 'failed', 'policy'],
  ['451 4.3.0 Error: queue file write error', 'message', 'deferred', 'other'],
  ['451 Temporary local problem - please try later', 'message', 'deferred', 'other'],
  ['503 5.5.1 Error: nested MAIL command', 'mail', 'failed', 'protocol'],
  ['500 5.5.2 Error: bad syntax', 'rcpt', 'failed', 'protocol'],
  ['554 Transaction failed', 'message', 'failed', 'other'],
  ['550 4.2.0 Mailbox temporarily unavailable', 'rcpt', 'deferred', 'recipient'],
  ['354 End data with <CR><LF>.<CR><LF>', 'message', 'deferred', 'protocol'],
];

describe('classifyReply: real-world replies', () => {
  for (const [text, stage, kind, category] of ROWS) {
    test(`${text.split('\n')[0]!.slice(0, 70)} (${stage})`, () => {
      const c = classifyReply(text, stage);
      assert.equal(c.kind, kind);
      assert.equal(c.category, category);
      assert.equal(c.reply.code, Number(text.slice(0, 3)));
    });
  }

  test('keeps the remote reply text for the NDR', () => {
    const c = classifyReply('550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown', 'rcpt');
    assert.equal(c.reply.enhanced, '5.1.1');
    assert.match(c.reply.text, /User unknown/);
  });

  test('an unparseable reply is deferred, never failed', () => {
    const c = classifyReply('garbage from a broken peer', 'rcpt');
    assert.equal(c.kind, 'deferred');
    assert.equal(c.reply.code, 451);
  });
});

describe('classify: local errors', () => {
  const cases = [
    [{ kind: 'socket', code: 'ECONNREFUSED' }, 'deferred', 'connect', 441],
    [{ kind: 'socket', code: 'ETIMEDOUT', stage: 'data' }, 'deferred', 'connect', 441],
    [{ kind: 'socket', code: 'ECONNRESET' }, 'deferred', 'connect', 451],
    [{ kind: 'socket', code: 'EHOSTUNREACH' }, 'deferred', 'connect', 441],
    [{ kind: 'socket', code: 'ENOENT' }, 'deferred', 'local-io', 451],
    [{ kind: 'socket', code: 'SOMETHING_NEW' }, 'deferred', 'other', 451],
    [{ kind: 'socket', code: 'DEPTH_ZERO_SELF_SIGNED_CERT', message: 'self-signed certificate' }, 'deferred', 'tls', 454],
    [{ kind: 'socket', code: 'ERR_TLS_CERT_ALTNAME_INVALID', message: "Hostname/IP does not match certificate's altnames" }, 'deferred', 'tls', 454],
    [{ kind: 'tls', message: 'STARTTLS not offered' }, 'deferred', 'tls', 454],
    [{ kind: 'dns', result: 'nxdomain', name: 'nowhere.example' }, 'failed', 'dns', 550],
    [{ kind: 'dns', result: 'nodata', name: 'nowhere.example' }, 'failed', 'dns', 550],
    [{ kind: 'dns', result: 'nullmx', name: 'nomail.example' }, 'failed', 'dns', 556],
    [{ kind: 'dns', result: 'temporary', name: 'flaky.example', detail: 'SERVFAIL' }, 'deferred', 'dns', 451],
  ] as const;
  for (const [input, kind, category, code] of cases) {
    test(`${JSON.stringify(input)}`, () => {
      const c = classify(input);
      assert.equal(c.kind, kind);
      assert.equal(c.category, category);
      assert.equal(c.reply.code, code);
    });
  }

  test('NXDOMAIN says 5.1.2; null MX says 5.1.10', () => {
    assert.equal(classify({ kind: 'dns', result: 'nxdomain', name: 'x.example' }).reply.enhanced, '5.1.2');
    assert.equal(classify({ kind: 'dns', result: 'nullmx', name: 'x.example' }).reply.enhanced, '5.1.10');
  });

  test('DowngradeDnsFailures turns permanent DNS errors into deferrals', () => {
    for (const result of ['nxdomain', 'nodata', 'nullmx'] as const) {
      const c = classify({ kind: 'dns', result, name: 'x.example' }, { downgradeDnsFailures: true });
      assert.equal(c.kind, 'deferred');
      assert.equal(Math.floor(c.reply.code / 100), 4);
    }
  });
});
