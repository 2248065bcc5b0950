import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { createSmtpDeliveryAgent } from '../../../src/delivery/smtp/agent.js';
import type { DeliveryAgent, DeliveryBatch } from '../../../src/model/outcome.js';
import { startSmtpSink, type SinkOptions, type SmtpSink } from '../../helpers/smtp-sink.js';
import { MemoryProtocolLog, SIMPLE, makeConfig, signal, silent, useSpoolAndSinks, type TempSpool } from './setup.js';

describe('what reaches the next hop: bytes, headers, extensions, replies, reuse, protocol log', () => {
  const fx = useSpoolAndSinks();
  const sink = fx.sink;

  function agent(s: SmtpSink, connector: Record<string, unknown> = {}, log = new MemoryProtocolLog(), extra: Record<string, unknown> = {}, timeouts?: { socket: number }): DeliveryAgent {
    const { config, connector: c } = makeConfig({ dnsRoutingEnabled: false, smartHosts: [`127.0.0.1:${s.port}`], ...connector }, extra);
    return createSmtpDeliveryAgent({ config, connector: c, resolver: null as never, logger: silent, protocolLog: log, ...(timeouts ? { timeouts } : {}) });
  }

  function batch(body: string | Buffer, recipients: Parameters<TempSpool['batch']>[0]['recipients'] = ['ann@fabrikam.test'], envelope = {}): Promise<DeliveryBatch> {
    return fx.spool().batch({ deliveryType: 'SmartHostConnectorDelivery', nextHopDomain: 'smarthost', recipients, body, envelope });
  }

  test('dot-stuffing happens exactly once, line endings become CRLF, no bare LF reaches the peer', async () => {
    const s = await sink({ tls: undefined });
    const a = agent(s);
    // A spool file with a leading-dot line, a lone dot line, a bare LF, a bare CR and an LF.LF smuggling attempt.
    const body = 'Subject: dots\r\n\r\n.leading dot\r\n.\r\nbare LF here\nand\rbare CR\r\nsmuggle\n.\nMAIL FROM:<evil@x>\r\nend\r\n';
    const r = await a.deliver(await batch(body), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    const wire = Buffer.concat(s.wire.at(-1)!).toString('latin1');
    const dataStart = wire.indexOf('Subject: dots');
    const data = wire.slice(dataStart, wire.indexOf('\r\n.\r\n', dataStart) + 5);
    assert.equal(data, 'Subject: dots\r\n\r\n..leading dot\r\n..\r\nbare LF here\r\nand\r\nbare CR\r\nsmuggle\r\n..\r\nMAIL FROM:<evil@x>\r\nend\r\n.\r\n');
    assert.doesNotMatch(wire.replace(/\r\n/g, ''), /[\r\n]/, 'no bare CR or LF on the wire');
    // The peer sees the message un-stuffed exactly as it was meant (one message, nothing smuggled).
    assert.equal(s.messages.length, 1);
    assert.equal(s.messages[0]!.data.toString('latin1'), 'Subject: dots\r\n\r\n.leading dot\r\n.\r\nbare LF here\r\nand\r\nbare CR\r\nsmuggle\r\n.\r\nMAIL FROM:<evil@x>\r\nend\r\n');
  });

  test('header firewall: organization and forest headers removed, Received kept', async () => {
    const s = await sink();
    const a = agent(s);
    const body =
      'Received: from client.example ([192.0.2.9]) by mail.contoso.test\r\n\twith ESMTP; Tue, 5 Mar 2024 09:14:07 +0000\r\n' +
      'X-MS-Exchange-Organization-SCL: -1\r\nX-Mailyard-Organization-AuthAs: Internal\r\nX-Mailyard-Forest-Thing: a\r\n b\r\nSubject: fw\r\n\r\nX-MS-Exchange-Organization-InBody: stays\r\n';
    await a.deliver(await batch(body), signal());
    await a.close?.();
    const got = s.messages[0]!.data.toString();
    assert.equal(got, 'Received: from client.example ([192.0.2.9]) by mail.contoso.test\r\n\twith ESMTP; Tue, 5 Mar 2024 09:14:07 +0000\r\nSubject: fw\r\n\r\nX-MS-Exchange-Organization-InBody: stays\r\n');
  });

  test('header firewall: kept when the next hop is one of our own servers', async () => {
    const s = await sink();
    const a = agent(s, {}, new MemoryProtocolLog(), { organization: { servers: [{ name: 'EX02', fqdn: 'ex02.contoso.test', address: '127.0.0.1' }] } });
    const body = 'X-MS-Exchange-Organization-SCL: -1\r\nSubject: own\r\n\r\nhi\r\n';
    await a.deliver(await batch(body), signal());
    await a.close?.();
    assert.equal(s.messages[0]!.data.toString(), body);
  });

  test('connection reuse: 5 messages over one connection; smtpMaxMessagesPerConnection caps it', async () => {
    const s = await sink();
    const log = new MemoryProtocolLog();
    const a = agent(s, { protocolLoggingLevel: 'Verbose' }, log);
    for (let i = 0; i < 5; i++) assert.equal((await a.deliver(await batch(SIMPLE), signal())).outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    await a.close?.();
    assert.equal(s.messages.length, 5);
    assert.equal(s.connections, 1);
    assert.equal(log.lines().filter((l) => l === '> RSET').length, 0, 'no RSET after completed transactions');

    const s2 = await sink();
    const a2 = agent(s2, { smtpMaxMessagesPerConnection: 2 });
    for (let i = 0; i < 5; i++) await a2.deliver(await batch(SIMPLE), signal());
    await a2.close?.();
    assert.equal(s2.messages.length, 5);
    assert.equal(s2.connections, 3);
  });

  test('DSN parameters are passed on per recipient when the hop offers DSN', async () => {
    const s = await sink();
    const a = agent(s);
    const rcpts = [
      { address: 'ann@fabrikam.test', notify: ['SUCCESS', 'FAILURE'] as const, orcpt: 'rfc822;ann@fabrikam.test' },
      { address: 'bob@fabrikam.test', notify: [] as const },
    ];
    const r = await a.deliver(await batch(SIMPLE, rcpts, { ret: 'HDRS', envid: 'QQ314159' }), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    const o = r.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind === 'delivered' && o.relayed, undefined);
    const m = s.messages[0]!;
    assert.equal(m.mailArgs.RET, 'HDRS');
    assert.equal(m.mailArgs.ENVID, 'QQ314159');
    assert.equal(m.rcptTo[0]!.args.NOTIFY, 'SUCCESS,FAILURE');
    assert.equal(m.rcptTo[0]!.args.ORCPT, 'rfc822;ann@fabrikam.test');
    assert.equal(m.rcptTo[1]!.args.NOTIFY, 'NEVER');
  });

  test('without DSN at the hop: no DSN parameters, and NOTIFY=SUCCESS yields a "relayed" outcome', async () => {
    const s = await sink({ dsn: false });
    const a = agent(s);
    const rcpts = [{ address: 'ann@fabrikam.test', notify: ['SUCCESS'] as const }, { address: 'bob@fabrikam.test' }];
    const r = await a.deliver(await batch(SIMPLE, rcpts, { ret: 'FULL' }), signal());
    await a.close?.();
    const ann = r.outcomes.get('ann@fabrikam.test');
    const bob = r.outcomes.get('bob@fabrikam.test');
    assert.equal(ann?.kind === 'delivered' && ann.relayed, true);
    assert.equal(bob?.kind === 'delivered' && bob.relayed, undefined);
    const wire = Buffer.concat(s.wire.at(-1)!).toString('latin1');
    assert.doesNotMatch(wire, /NOTIFY=|RET=|ORCPT=/);
  });

  test('8-bit message: BODY=8BITMIME when offered; 554 5.6.3 when not and the 8-bit bytes are in a header', async () => {
    const body = Buffer.from('Subject: caf\u00e9\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nd\u00e9j\u00e0 vu\r\n', 'utf8');
    const s = await sink();
    const a = agent(s);
    const ok = await a.deliver(await batch(body, undefined, { body: '8BITMIME' }), signal());
    await a.close?.();
    assert.equal(ok.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(s.messages[0]!.mailArgs.BODY, '8BITMIME');
    assert.deepEqual(s.messages[0]!.data, body);

    const s7 = await sink({ eightBitMime: false });
    const a7 = agent(s7);
    const bad = await a7.deliver(await batch(body, undefined, { body: '8BITMIME' }), signal());
    // a message labelled 8BITMIME that is 7-bit clean still goes
    const clean = await a7.deliver(await batch(SIMPLE, undefined, { body: '8BITMIME' }), signal());
    await a7.close?.();
    const o = bad.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind, 'failed');
    assert.equal(o?.kind === 'failed' && `${o.reply.code} ${o.reply.enhanced}`, '554 5.6.3');
    assert.equal(clean.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(s7.messages.length, 1);
  });

  test('8-bit message to a hop without 8BITMIME: converted to 7 bit (QP / base64), same content, no BODY=8BITMIME', async () => {
    const attachment = Buffer.from([0x00, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0xff, 0x80]);
    const text = 'Gr\u00fc\u00dfe aus K\u00f6ln \u2014 ' + '\u00e9'.repeat(50) + '\r\n.line with a dot\r\n';
    const body = Buffer.concat([
      Buffer.from('From: a@contoso.test\r\nTo: ann@fabrikam.test\r\nSubject: downgrade\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="=_b"\r\n\r\n'),
      Buffer.from(`--=_b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}\r\n`, 'utf8'),
      Buffer.from('--=_b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=blob.bin\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'),
      attachment,
      Buffer.from('\r\n--=_b--\r\n'),
    ]);
    const s7 = await sink({ eightBitMime: false });
    const a7 = agent(s7);
    const r = await a7.deliver(await batch(body, undefined, { body: '8BITMIME' }), signal());
    await a7.close?.();
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(s7.messages.length, 1);
    const wire = Buffer.concat(s7.wire.at(-1)!);
    assert.ok(wire.every((b) => b < 0x80), 'no byte >= 0x80 on the wire');
    assert.doesNotMatch(wire.toString('latin1'), /BODY=8BITMIME/i);
    assert.equal(s7.messages[0]!.mailArgs.BODY, undefined);
    const got = s7.messages[0]!.data.toString('latin1');
    assert.match(got, /Content-Transfer-Encoding: quoted-printable\r\n/);
    assert.match(got, /Content-Transfer-Encoding: base64\r\n/);
    const parsed = await simpleParser(s7.messages[0]!.data);
    assert.equal(parsed.subject, 'downgrade');
    assert.equal(parsed.text, text.replace(/\r\n/g, '\n'));
    assert.equal(parsed.attachments.length, 1);
    assert.deepEqual(parsed.attachments[0]!.content, attachment);
  });

  test('a message declared 7BIT that carries 8-bit bytes is converted too: the content decides, not the label', async () => {
    const body = Buffer.from('From: a@contoso.test\r\nSubject: mislabelled\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nK\u00f6ln\r\n', 'utf8');
    const s7 = await sink({ eightBitMime: false });
    const a7 = agent(s7);
    const r = await a7.deliver(await batch(body, undefined, { body: '7BIT' }), signal());
    await a7.close?.();
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    const wire = Buffer.concat(s7.wire.at(-1)!);
    assert.ok(wire.every((b) => b < 0x80), 'no byte >= 0x80 on the wire');
    assert.equal((await simpleParser(s7.messages[0]!.data)).text, 'K\u00f6ln\n');
  });

  test('SMTPUTF8 message: declared when offered; 550 5.6.7 when not', async () => {
    const body = Buffer.from('From: j\u00f6rg@contoso.test\r\nSubject: gr\u00fc\u00dfe\r\n\r\nhi\r\n', 'utf8');
    const env = { smtputf8: true, body: '8BITMIME', mailFrom: 'j\u00f6rg@contoso.test' };
    const s = await sink();
    const a = agent(s);
    const ok = await a.deliver(await batch(body, undefined, env), signal());
    await a.close?.();
    assert.equal(ok.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(s.messages[0]!.mailArgs.SMTPUTF8, true);
    assert.equal(s.messages[0]!.mailFrom, 'j\u00f6rg@contoso.test');

    const sNo = await sink({ smtputf8: false });
    const aNo = agent(sNo);
    const bad = await aNo.deliver(await batch(body, undefined, env), signal());
    await aNo.close?.();
    const o = bad.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind === 'failed' && `${o.reply.code} ${o.reply.enhanced}`, '550 5.6.7');
    assert.equal(sNo.messages.length, 0);
  });

  test('a 421 after the data never marks a recipient delivered', async () => {
    const s = await sink({ dataReply: '421 4.3.0 Shutting down, try later' });
    const a = agent(s);
    const r = await a.deliver(await batch(SIMPLE, ['ann@fabrikam.test', 'bob@fabrikam.test']), signal());
    await a.close?.();
    for (const addr of ['ann@fabrikam.test', 'bob@fabrikam.test']) {
      const o = r.outcomes.get(addr);
      assert.equal(o?.kind, 'deferred');
      assert.equal(o?.reply?.code, 421);
    }
    assert.equal(r.connectionFailure, true);
  });

  test('a 421 to one RCPT (pipelined) defers every recipient; none is delivered', async () => {
    const s = await sink({ rcptReplies: { 'bob@fabrikam.test': '421 4.4.2 Closing connection' } });
    const a = agent(s);
    const r = await a.deliver(await batch(SIMPLE, ['ann@fabrikam.test', 'bob@fabrikam.test', 'cid@fabrikam.test']), signal());
    await a.close?.();
    for (const addr of ['ann@fabrikam.test', 'bob@fabrikam.test', 'cid@fabrikam.test']) assert.equal(r.outcomes.get(addr)?.kind, 'deferred', addr);
    assert.equal(s.messages.length, 0);
  });

  test('a 554 after the data fails every accepted recipient with the remote reply', async () => {
    const s = await sink({ dataReply: '554 5.7.1 Message rejected as spam' });
    const a = agent(s);
    const r = await a.deliver(await batch(SIMPLE), signal());
    await a.close?.();
    const o = r.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind, 'failed');
    assert.match(o?.kind === 'failed' ? o.reply.text : '', /rejected as spam/);
  });

  test('MAIL FROM refused with 550: every recipient failed; with 451: deferred', async () => {
    const s = await sink({ mailReply: '550 5.7.1 Sender blocked' });
    const a = agent(s);
    const r = await a.deliver(await batch(SIMPLE, ['ann@fabrikam.test', 'bob@fabrikam.test']), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('bob@fabrikam.test')?.kind, 'failed');
    const s2 = await sink({ mailReply: '451 4.7.1 Greylisted' });
    const a2 = agent(s2);
    const r2 = await a2.deliver(await batch(SIMPLE), signal());
    await a2.close?.();
    assert.equal(r2.outcomes.get('ann@fabrikam.test')?.kind, 'deferred');
  });

  test('a timeout waiting for the final reply defers, never delivers', async () => {
    const s = await sink({ stallData: true });
    const a = agent(s, {}, new MemoryProtocolLog(), {}, { socket: 300 });
    const r = await a.deliver(await batch(SIMPLE), signal());
    await a.close?.();
    const o = r.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind, 'deferred');
    assert.equal(o?.kind === 'deferred' && o.category, 'connect');
    assert.equal(r.connectionFailure, true);
  });

  test('a spool file that cannot be read defers with local-io; nothing reaches the peer', async () => {
    const s = await sink();
    const a = agent(s);
    const b = await batch(SIMPLE);
    const r = await a.deliver({ ...b, bodyPath: `${b.bodyPath}.missing` }, signal());
    await a.close?.();
    const o = r.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind, 'deferred');
    assert.equal(o?.kind === 'deferred' && o.category, 'local-io');
    assert.equal(s.messages.length, 0);
  });

  test('send protocol log: Exchange events for the whole session, in order', async () => {
    const s = await sink();
    const log = new MemoryProtocolLog();
    const a = agent(s, { protocolLoggingLevel: 'Verbose' }, log);
    const b = await batch(SIMPLE);
    await a.deliver(b, signal());
    await a.close?.();
    await s.waitFor(() => log.events.some((e) => e.event.event === '-'));
    const ev = log.events.map((e) => e.event);
    assert.ok(log.events.every((e) => e.service === 'HubSend'));
    assert.ok(ev.every((e) => e.connectorId === 'To Internet' && e.sessionId === ev[0]!.sessionId));
    assert.deepEqual(ev.map((e) => e.sequence), ev.map((_, i) => i));
    const lines = log.lines();
    assert.equal(lines[0], '*  | attempting to connect');
    assert.equal(lines[1], '+ ');
    assert.match(lines[2]!, /^< 220 /);
    assert.equal(lines[3], '> EHLO mail.contoso.test');
    assert.match(lines[4]!, /^< 250-sink\.test .* PIPELINING /);
    assert.doesNotMatch(lines[4]!.slice(6), / 250[ -]/);
    const joined = lines.join('\n');
    assert.match(joined, new RegExp(`sending message with RecordId ${b.messageId} and InternetMessageId <\\d+@contoso\\.test>`));
    assert.match(joined, /> MAIL FROM:<sender@contoso\.test>/);
    assert.match(joined, /> RCPT TO:<ann@fabrikam\.test>/);
    assert.match(joined, /> DATA/);
    assert.match(joined, /< 250 2\.0\.0 Ok: queued/);
    assert.match(joined, /> QUIT/);
    assert.equal(lines.at(-1), '-  | Local');
    assert.match(ev[2]!.localEndpoint, /^127\.0\.0\.1:\d+$/);
    assert.equal(ev[2]!.remoteEndpoint, `127.0.0.1:${s.port}`);
  });

  test('PIPELINING when offered: MAIL, RCPTs and DATA go out before their replies; lock-step when not', async () => {
    const order = async (opts: SinkOptions) => {
      const s = await sink(opts);
      const log = new MemoryProtocolLog();
      const a = agent(s, { protocolLoggingLevel: 'Verbose' }, log);
      await a.deliver(await batch(SIMPLE, ['ann@fabrikam.test', 'bob@fabrikam.test']), signal());
      await a.close?.();
      const lines = log.lines();
      const from = lines.findIndex((l) => l.startsWith('> MAIL FROM'));
      return lines.slice(from, from + 6).map((l) => l.slice(0, 6));
    };
    assert.deepEqual(await order({}), ['> MAIL', '> RCPT', '> RCPT', '> DATA', '< 250 ', '< 250 ']);
    assert.deepEqual(await order({ pipelining: false }), ['> MAIL', '< 250 ', '> RCPT', '< 250 ', '> RCPT', '< 250 ']);
  });

  test('EHLO carries the connector fqdn; sourceIPAddress is the local address of the connection', async () => {
    const s = await sink();
    const log = new MemoryProtocolLog();
    const a = agent(s, { protocolLoggingLevel: 'Verbose', fqdn: 'out.contoso.test', sourceIPAddress: '127.0.0.2' }, log);
    const r = await a.deliver(await batch(SIMPLE), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(s.messages[0]!.remoteAddress.replace(/^::ffff:/, ''), '127.0.0.2');
    assert.ok(log.lines().includes('> EHLO out.contoso.test'));
  });

  test('forceHELO: HELO instead of EHLO, and then no ESMTP parameters', async () => {
    const s = await sink();
    const log = new MemoryProtocolLog();
    const a = agent(s, { protocolLoggingLevel: 'Verbose', forceHELO: true }, log);
    const r = await a.deliver(await batch(SIMPLE, [{ address: 'ann@fabrikam.test', notify: ['FAILURE'] }]), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    const lines = log.lines();
    assert.ok(lines.includes('> HELO mail.contoso.test'));
    assert.ok(!lines.some((l) => l.startsWith('> EHLO')));
    assert.ok(lines.includes('> RCPT TO:<ann@fabrikam.test>'), 'no NOTIFY without the DSN extension');
  });

  test('no protocol log when protocolLoggingLevel is None', async () => {
    const s = await sink();
    const log = new MemoryProtocolLog();
    const a = agent(s, { protocolLoggingLevel: 'None' }, log);
    await a.deliver(await batch(SIMPLE), signal());
    await a.close?.();
    assert.equal(log.events.length, 0);
  });
});
