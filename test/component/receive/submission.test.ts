import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { LineClient } from '../../helpers/smtp-client.js';
import { message, startHarness, TEST_USERS, type Harness } from './harness.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const PASSWORD = TEST_USERS['ann@contoso.com'];

describe('a Client (submission) connector with STARTTLS and AUTH', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      tls: true,
      connectors: [
        { name: 'Client Frontend EX01', usage: 'Client', bindings: ['127.0.0.1:0'], maxLogonFailures: 2 },
        { name: 'Open Auth', usage: 'Custom', authMechanism: ['BasicAuth'], permissionGroups: ['ExchangeUsers'], bindings: ['127.0.0.2:0'] },
      ],
    });
  });
  after(async () => h.close());

  test('submission without authentication: 530 5.7.1', async () => {
    const c = await LineClient.connect(h.port());
    await c.read();
    const ehlo = await c.cmd('EHLO client.example');
    assert.ok(ehlo.text.includes('STARTTLS'));
    assert.ok(!ehlo.text.includes('AUTH'), 'AUTH is not offered before TLS');
    assert.equal((await c.cmd('MAIL FROM:<ann@contoso.com>')).raw, '530 5.7.1 Client was not authenticated');
    c.close();
  });

  test('AUTH before STARTTLS where TLS is required: 538 5.7.11', async () => {
    const c = await LineClient.connect(h.port());
    await c.read();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd(`AUTH PLAIN ${b64(`\0ann@contoso.com\0${PASSWORD}`)}`)).raw, '538 5.7.11 Encryption required for requested authentication mechanism');
    c.close();
  });

  test('commands pipelined after STARTTLS in the same packet are not executed', async () => {
    const c = await LineClient.connect(h.port());
    await c.read();
    await c.cmd('EHLO client.example');
    c.write('STARTTLS\r\nMAIL FROM:<evil@fabrikam.com>\r\nRSET\r\n');
    assert.equal((await c.read()).raw, '220 2.0.0 SMTP server ready');
    await c.upgrade();
    // the first thing inside TLS is our EHLO's reply; nothing answers the injected commands
    const ehlo = await c.cmd('EHLO client.example');
    assert.equal(ehlo.code, 250);
    assert.ok(ehlo.text.includes('AUTH LOGIN PLAIN'), 'AUTH offered inside TLS');
    assert.ok(!ehlo.text.includes('STARTTLS'));
    assert.equal((await c.cmd('NOOP')).raw, '250 2.0.0 OK');
    assert.equal(c.pending, '');
    c.close();
  });

  test('AUTH PLAIN after STARTTLS, relay allowed, Message-ID and Date added; protocol log has no secret', async () => {
    const c = await LineClient.connect(h.port());
    await c.read();
    await c.cmd('EHLO client.example');
    await c.cmd('STARTTLS');
    await c.upgrade();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd(`AUTH PLAIN ${b64(`\0ann@contoso.com\0${PASSWORD}`)}`)).raw, '235 2.7.0 Authentication successful');
    assert.equal((await c.cmd('MAIL FROM:<ann@contoso.com>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<someone@fabrikam.example>')).code, 250, 'authenticated users may relay');
    await c.cmd('DATA');
    const r = await c.cmd(`From: ann@contoso.com\r\nTo: someone@fabrikam.example\r\nSubject: hi\r\n\r\nbody\r\n.`);
    assert.equal(r.code, 250);
    const s = h.intake.stored.at(-1)!;
    assert.match(s.content, /\r\nMessage-ID: <[0-9a-f]{24}@mail\.contoso\.test>\r\n/);
    assert.match(s.content, /\r\nDate: \w{3}, \d+ \w{3} \d{4} /);
    assert.match(s.content, /^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby mail\.contoso\.test\r\n\twith ESMTPSA \(version=TLSv1\.[23] cipher=\S+\)\r\n/);
    assert.doesNotMatch(s.content, /authenticated as/, 'addAuthenticatedUserToReceived is off');
    assert.equal(s.req.source.authUser, 'ann@contoso.com');
    assert.ok(s.req.source.tls);
    // send-as: someone else's address is refused
    assert.equal((await c.cmd('MAIL FROM:<ceo@contoso.com>')).raw, '550 5.7.1 Client does not have permissions to send as this sender');
    await c.cmd('QUIT');
    await c.waitClosed();

    const lines = (await h.protocolLinesUntil(/,-,,Local/)).join('\n');
    assert.doesNotMatch(lines, new RegExp(b64(`\0ann@contoso.com\0${PASSWORD}`).slice(0, 16)));
    assert.doesNotMatch(lines, /correct horse/);
    assert.match(lines, /,<,AUTH PLAIN <authentication response>,/);
    assert.match(lines, /EX01\\Client Frontend EX01,[0-9A-F]{16},\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,\*,SMTPSubmit SMTPAcceptAnyRecipient BypassAntiSpam AcceptRoutingHeaders,Set Session Permissions/);
    assert.match(lines, /,\*,,"?TLS protocol TLSv1\.[23] negotiation succeeded using cipher/);
    assert.match(lines, /,\+,,/);
    assert.match(lines, /,-,,Local/);
  });

  test('AUTH LOGIN with nodemailer after STARTTLS', async () => {
    const conn = new SMTPConnection({ host: '127.0.0.1', port: h.port(), tls: { rejectUnauthorized: false }, requireTLS: true });
    await new Promise<void>((res, rej) => conn.connect((err?: Error) => (err ? rej(err) : res())));
    await new Promise<void>((res, rej) => conn.login({ user: 'ann@contoso.com', pass: PASSWORD, method: 'LOGIN' }, (err?: Error | null) => (err ? rej(err) : res())));
    const info = await new Promise<{ response: string }>((res, rej) =>
      conn.send({ from: 'ann@contoso.com', to: ['x@fabrikam.example'] }, message({ From: 'ann@contoso.com' }), (err: Error | null, i: { response: string }) => (err ? rej(err) : res(i))),
    );
    assert.match(info.response, /^250 2\.6\.0 /);
    conn.quit();
  });

  test('failed logons: 535 5.7.3, then 421 4.7.0 at maxLogonFailures', async () => {
    const c = await LineClient.connect(h.port());
    await c.read();
    await c.cmd('EHLO client.example');
    await c.cmd('STARTTLS');
    await c.upgrade();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd(`AUTH PLAIN ${b64('\0ann@contoso.com\0wrong')}`)).raw, '535 5.7.3 Authentication unsuccessful');
    assert.equal((await c.cmd('AUTH LOGIN')).code, 334);
    assert.equal((await c.cmd(b64('ann@contoso.com'))).code, 334);
    assert.equal((await c.cmd(b64('wrong again'))).raw, '535 5.7.3 Authentication unsuccessful');
    assert.equal((await c.read()).raw, '421 4.7.0 Too many errors on this connection, closing transmission channel');
    await c.waitClosed();
    const lines = (await h.protocolLinesUntil(/LogonDenied/)).join('\n');
    assert.match(lines, /Inbound AUTH PLAIN failed because of LogonDenied/);
    assert.doesNotMatch(lines, /wrong again|d3JvbmcgYWdhaW4/);
  });

  test('BasicAuth without BasicAuthRequireTLS offers AUTH in clear text', async () => {
    const c = await LineClient.connect(h.port('Open Auth'), { host: '127.0.0.2' });
    await c.read();
    const ehlo = await c.cmd('EHLO client.example');
    assert.ok(ehlo.text.includes('AUTH LOGIN PLAIN'));
    assert.ok(!ehlo.text.includes('STARTTLS'), 'no Tls in authMechanism');
    c.close();
  });
});

describe('protocol log file', () => {
  test('is written under FrontEnd/ProtocolLog/SmtpReceive as RECVyyyymmddhh-n.LOG', async () => {
    const h = await startHarness({ connectors: [{ name: 'Internet', usage: 'Internet' }] });
    try {
      const c = await LineClient.connect(h.port());
      await c.read();
      await c.cmd('EHLO x.example');
      await c.cmd('QUIT');
      await c.waitClosed();
      await h.protocolLog.flush();
      const dir = `${h.logDir}/FrontEnd/ProtocolLog/SmtpReceive`;
      const { readdir } = await import('node:fs/promises');
      const names = await readdir(dir);
      assert.equal(names.length, 1);
      assert.match(names[0]!, /^RECV\d{10}-1\.LOG$/);
      const text = await readFile(`${dir}/${names[0]}`, 'utf8');
      assert.match(text, /#Log-type: SMTP Receive Protocol Log/);
      assert.match(text, /,<,EHLO x\.example,/);
      assert.match(text, /,>,250 mail\.contoso\.test Hello \[127\.0\.0\.1\] SIZE/);
      assert.match(text, /,>,221 2\.0\.0 Service closing transmission channel,/);
    } finally {
      await h.close();
    }
  });
});
