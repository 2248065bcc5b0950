import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { LineClient } from '../../helpers/smtp-client.js';
import { message, startHarness, type Harness } from './harness.js';

describe('an Internet-facing connector (anonymous sessions)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      connectors: [
        {
          name: 'Internet',
          usage: 'Internet',
          maxMessageSize: 2000,
          maxRecipientsPerMessage: 2,
          maxHopCount: 3,
          maxProtocolErrors: 3,
          deliveryStatusNotificationEnabled: true,
        },
      ],
    });
  });
  after(async () => h.close());

  async function session(): Promise<LineClient> {
    const c = await LineClient.connect(h.port());
    const greet = await c.read();
    assert.equal(greet.code, 220);
    const ehlo = await c.cmd('EHLO client.fabrikam.com');
    assert.equal(ehlo.code, 250);
    return c;
  }

  test('greets at once: a client that talks immediately is not an early talker', async () => {
    const c = await LineClient.connect(h.port());
    c.send('EHLO quick.example'); // written before reading the greeting
    const greet = await c.read();
    assert.equal(greet.code, 220);
    assert.match(greet.text, /^mail\.contoso\.test Mailyard ESMTP/);
    const ehlo = await c.read();
    assert.equal(ehlo.code, 250);
    assert.match(ehlo.lines[0]!, /^250-mail\.contoso\.test Hello \[127\.0\.0\.1\]$/);
    assert.ok(ehlo.lines.some((l) => l.endsWith('SIZE 2000')));
    for (const ext of ['PIPELINING', 'DSN', 'ENHANCEDSTATUSCODES', '8BITMIME', 'SMTPUTF8']) assert.ok(ehlo.text.includes(ext), ext);
    assert.ok(!ehlo.text.includes('STARTTLS'), 'no certificate: STARTTLS not offered');
    assert.ok(!ehlo.text.includes('AUTH'), 'Internet usage: no BasicAuth');
    assert.ok(!ehlo.text.includes('CHUNKING'));
    c.close();
  });

  test('mail to an accepted domain is queued with a Received header, only after the intake stored it', async () => {
    const c = await session();
    assert.equal((await c.cmd('MAIL FROM:<ann@fabrikam.com> SIZE=100 RET=HDRS ENVID=abc123')).raw, '250 2.1.0 Sender OK');
    assert.equal((await c.cmd('RCPT TO:<bob@contoso.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@contoso.com')).raw, '250 2.1.5 Recipient OK');
    assert.equal((await c.cmd('RCPT TO:<carol@sales.contoso.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const before = h.intake.stored.length;
    const r = await c.cmd(`${message({ 'Message-ID': '<m1@fabrikam.com>' }, 'line one\r\n..dot line\r\n')}.`);
    assert.equal(r.code, 250);
    assert.match(r.raw, /^250 2\.6\.0 <m1@fabrikam\.com> \[InternalId=[0-9A-F]{20}, Hostname=mail\.contoso\.test\] Queued mail for delivery$/);
    assert.equal(h.intake.stored.length, before + 1);
    const s = h.intake.stored.at(-1)!;
    assert.ok(r.raw.includes(s.id));
    assert.equal(s.req.envelope.mailFrom, 'ann@fabrikam.com');
    assert.deepEqual(s.req.envelope.recipients, [
      { address: 'bob@contoso.com', orcpt: 'rfc822;bob@contoso.com', notify: ['SUCCESS', 'FAILURE'] },
      { address: 'carol@sales.contoso.com' },
    ]);
    assert.equal(s.req.envelope.ret, 'HDRS');
    assert.equal(s.req.envelope.envid, 'abc123');
    assert.equal(s.req.envelope.declaredSize, 100);
    assert.equal(s.req.source.connector, 'Internet');
    assert.match(s.content, /^Received: from client\.fabrikam\.com \(\[127\.0\.0\.1\]\)\r\n\tby mail\.contoso\.test\r\n\twith ESMTP\r\n\tid [0-9A-F]{16}\.1; \w{3}, /);
    assert.ok(s.content.includes('\r\n.dot line\r\n'), 'dot-unstuffed');
    assert.equal((await c.cmd('QUIT')).raw, '221 2.0.0 Service closing transmission channel');
    await c.waitClosed();
  });

  test('after QUIT the server closes the session itself, even when the client keeps its side open', async () => {
    // allowHalfOpen: this client does not answer the server's FIN with its own.
    const socket = net.connect({ host: '127.0.0.1', port: h.port(), allowHalfOpen: true });
    socket.setEncoding('latin1');
    socket.on('error', () => {});
    let received = '';
    let ended = false;
    socket.on('data', (d: string) => (received += d));
    socket.on('end', () => (ended = true));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const localPort = socket.localPort;
    const until = async (cond: () => boolean, what: string) => {
      const deadline = Date.now() + 5000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(received)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    try {
      await until(() => received.startsWith('220 '), 'the greeting');
      socket.write('EHLO client.fabrikam.com\r\nQUIT\r\n');
      await until(() => received.includes('\r\n221 2.0.0 Service closing transmission channel\r\n'), 'the 221');
      await until(() => ended, "the server's FIN");
      // The session is over on the server (its "-" line is written) while our socket is still open.
      const closedLine = new RegExp(`,127\\.0\\.0\\.1:${localPort},-,,Local`);
      const lines = await h.protocolLinesUntil(closedLine, 3000);
      assert.ok(lines.some((l) => closedLine.test(l)), 'the session is closed on the server');
      assert.ok(lines.some((l) => l.includes(`127.0.0.1:${localPort},>,221 2.0.0 Service closing transmission channel`)));
      assert.equal(socket.destroyed, false);
    } finally {
      socket.destroy();
    }
  });

  test('relay to a domain we are not responsible for is refused with 550 5.7.54', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<ann@fabrikam.com>');
    assert.equal((await c.cmd('RCPT TO:<x@elsewhere.example>')).raw, '550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain');
    c.close();
  });

  test('too many recipients: 452 4.5.3, and the message goes through for the accepted ones', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<ann@fabrikam.com>');
    assert.equal((await c.cmd('RCPT TO:<a@contoso.com>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<b@contoso.com>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<c@contoso.com>')).raw, '452 4.5.3 Too many recipients');
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd(`${message()}.`)).code, 250);
    assert.deepEqual(h.intake.stored.at(-1)!.req.envelope.recipients.map((r) => r.address), ['a@contoso.com', 'b@contoso.com']);
    c.close();
  });

  test('size: SIZE= over the limit at MAIL, and a real size over the limit after DATA, get 552 5.3.4', async () => {
    const c = await session();
    assert.equal((await c.cmd('MAIL FROM:<ann@fabrikam.com> SIZE=2001')).raw, '552 5.3.4 Message size exceeds fixed maximum message size');
    await c.cmd('MAIL FROM:<ann@fabrikam.com> SIZE=10');
    await c.cmd('RCPT TO:<bob@contoso.com>');
    await c.cmd('DATA');
    const count = h.intake.stored.length;
    const r = await c.cmd(`${message({}, `${'x'.repeat(70)}\r\n`.repeat(40))}.`);
    assert.equal(r.raw, '552 5.3.4 Message size exceeds fixed maximum message size');
    assert.equal(h.intake.stored.length, count, 'nothing stored');
    // the session goes on
    assert.equal((await c.cmd('NOOP')).raw, '250 2.0.0 OK');
    c.close();
  });

  test('hop count: more Received fields than maxHopCount get 554 5.4.6', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<ann@fabrikam.com>');
    await c.cmd('RCPT TO:<bob@contoso.com>');
    await c.cmd('DATA');
    const hops = 'Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n'.repeat(3);
    assert.equal((await c.cmd(`${hops}${message()}.`)).raw, '554 5.4.6 Hop count exceeded - possible mail loop');
    c.close();
  });

  test('header firewall: organization and forest headers from anonymous senders are stripped', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<ann@fabrikam.com>');
    await c.cmd('RCPT TO:<bob@contoso.com>');
    await c.cmd('DATA');
    const r = await c.cmd(
      `${message({
        'X-MS-Exchange-Organization-SCL': '-1',
        'X-Mailyard-Organization-AuthAs': 'Internal',
        'X-MS-Exchange-Forest-Foo': 'x',
        'X-Other': 'kept',
        Received: 'from a by b; Mon, 1 Jan 2024 00:00:00 +0000',
      })}.`,
    );
    assert.equal(r.code, 250);
    const content = h.intake.stored.at(-1)!.content;
    assert.doesNotMatch(content, /X-MS-Exchange-Organization|X-Mailyard-Organization|X-MS-Exchange-Forest/i);
    assert.match(content, /X-Other: kept/);
    assert.match(content, /Received: from a by b/, 'anonymous keeps routing headers');
    c.close();
  });

  test('bad input: unknown command, bare LF, NUL, then 421 after maxProtocolErrors', async () => {
    const c = await session();
    assert.equal((await c.cmd('FROB')).raw, '500 5.3.3 Unrecognized command');
    c.write('NOOP\n');
    assert.equal((await c.read()).raw, '500 5.5.2 Syntax error: command line ends with a bare line feed');
    c.write('NO\0OP\r\n');
    assert.equal((await c.read()).raw, '500 5.5.2 Syntax error: command contains a NUL byte');
    assert.equal((await c.read()).raw, '421 4.7.0 Too many errors on this connection, closing transmission channel');
    await c.waitClosed();
  });

  test('bad input: a bare CR inside a command is refused; BDAT (CHUNKING) is not supported', async () => {
    const c = await session();
    c.write('NO\rOP\r\n');
    assert.equal((await c.read()).raw, '500 5.5.2 Syntax error: command contains a bare carriage return');
    assert.equal((await c.cmd('BDAT 10 LAST')).raw, '500 5.3.3 Unrecognized command');
    c.close();
  });

  test('8BITMIME and SMTPUTF8 are carried into the envelope', async () => {
    const c = await session();
    assert.equal((await c.cmd('MAIL FROM:<jörg@fabrikam.com> BODY=8BITMIME SMTPUTF8')).code, 250);
    await c.cmd('RCPT TO:<bob@contoso.com>');
    await c.cmd('DATA');
    assert.equal((await c.cmd(`${message({}, 'Grüße\r\n')}.`)).code, 250);
    const env = h.intake.stored.at(-1)!.req.envelope;
    assert.equal(env.body, '8BITMIME');
    assert.equal(env.smtputf8, true);
    c.close();
  });

  test('a client that disconnects in the middle of DATA leaves nothing behind and the service goes on', async () => {
    const count = h.intake.stored.length;
    const c = await session();
    await c.cmd('MAIL FROM:<ann@fabrikam.com>');
    await c.cmd('RCPT TO:<bob@contoso.com>');
    await c.cmd('DATA');
    c.write('Subject: half\r\n\r\nsome text');
    c.close();
    const d = await session();
    assert.equal((await d.cmd('NOOP')).code, 250);
    d.close();
    assert.equal(h.intake.stored.length, count);
  });

  test('bad input: an over-long line gets 500 5.5.2 and the session ends', async () => {
    const c = await session();
    c.send(`NOOP ${'a'.repeat(5000)}`);
    assert.equal((await c.read()).raw, '500 5.5.2 Line too long');
    await c.waitClosed();
  });

  test('command order and syntax: 503 and 501 replies', async () => {
    const c = await LineClient.connect(h.port());
    await c.read();
    assert.equal((await c.cmd('MAIL FROM:<a@b.com>')).raw, '503 5.5.2 Send hello first');
    await c.cmd('EHLO x.example');
    assert.equal((await c.cmd('RCPT TO:<bob@contoso.com>')).raw, '503 5.5.2 Need mail command');
    assert.equal((await c.cmd('MAIL FROM:<a@@b>')).raw, '501 5.1.7 Invalid address');
    c.close();
  });
});

describe('maxLocalHopCount', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ connectors: [{ name: 'Internet', usage: 'Internet', maxLocalHopCount: 1 }] });
  });
  after(async () => h.close());

  test('a message that already passed through this server is refused with 554 5.4.6; foreign hops do not count', async () => {
    const c = await LineClient.connect(h.port());
    const greet = await c.read();
    const fqdn = /^(\S+)/.exec(greet.text)![1]!;
    await c.cmd('EHLO client.fabrikam.com');
    for (const [by, expected] of [
      ['relay.fabrikam.com', /^250 /],
      [fqdn, /^554 5\.4\.6 /],
    ] as const) {
      assert.equal((await c.cmd('MAIL FROM:<ann@fabrikam.com>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<bob@contoso.com>')).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      const hop = `Received: from somewhere by ${by} with ESMTP; Mon, 1 Jan 2024 00:00:00 +0000\r\n`;
      assert.match((await c.cmd(`${hop}${message()}.`)).raw, expected);
    }
    c.close();
  });
});
