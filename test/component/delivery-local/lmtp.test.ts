import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { checkLmtpRecipient, createLmtpAgent } from '../../../src/delivery/lmtp.js';
import { createMailboxAgent } from '../../../src/delivery/mailbox.js';
import type { Config } from '../../../src/config/defaults.js';
import { captureLogger, captureProtocolLog, MESSAGE, spooled, tempDir } from './support.js';

interface Received {
  from: string;
  to: string[];
  body: string;
}

/** An in-process LMTP server: nobody@ is refused at RCPT, full@ gets 452 after the message. */
function lmtpServer(received: Received[], sessions: { count: number }): SMTPServer {
  return new SMTPServer({
    lmtp: true,
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onConnect(_s, cb) {
      sessions.count++;
      cb();
    },
    onRcptTo(address, _s, cb) {
      if (address.address.startsWith('nobody@')) return cb(Object.assign(new Error('5.1.1 <nobody@contoso.com> User doesn\'t exist'), { responseCode: 550 }));
      cb();
    },
    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), body: Buffer.concat(chunks).toString('utf8') });
        const replies = session.envelope.rcptTo.map((r) =>
          r.address.startsWith('full@') ? Object.assign(new Error('4.2.2 Mailbox is full'), { responseCode: 452 }) : `2.0.0 <${r.address}> Saved`,
        );
        cb(null, replies as unknown as string);
      });
    },
  });
}

describe('LMTP delivery', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let server: SMTPServer;
  let port: number;
  const received: Received[] = [];
  const sessions = { count: 0 };

  before(async () => {
    ({ dir, cleanup } = await tempDir('lmtp'));
    server = lmtpServer(received, sessions);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.server.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await cleanup();
  });

  test('per-recipient results: 250 delivered, 550 at RCPT failed, 452 after DATA deferred; body arrives intact', async () => {
    const protocolLog = captureProtocolLog();
    const agent = createLmtpAgent({ target: { host: '127.0.0.1', port }, connectorName: 'Mailbox Delivery', lhloName: 'mx.contoso.com', logger: captureLogger().logger, protocolLog });
    const batch = await spooled(dir, MESSAGE, ['ann@contoso.com', 'nobody@contoso.com', 'full@contoso.com']);
    const result = await agent.deliver(batch, new AbortController().signal);
    await agent.close();

    const ann = result.outcomes.get('ann@contoso.com');
    assert.equal(ann?.kind, 'delivered');
    assert.equal(ann?.reply?.code, 250);
    assert.match(ann?.reply?.text ?? '', /Saved/);
    const nobody = result.outcomes.get('nobody@contoso.com');
    assert.equal(nobody?.kind, 'failed');
    assert.equal(nobody?.reply?.code, 550);
    assert.equal(nobody?.reply?.enhanced, '5.1.1');
    const full = result.outcomes.get('full@contoso.com');
    assert.equal(full?.kind, 'deferred');
    assert.equal(full?.reply?.code, 452);
    assert.equal(full?.reply?.enhanced, '4.2.2');

    const got = received.at(-1)!;
    assert.equal(got.from, 'ann@fabrikam.com');
    assert.deepEqual(got.to, ['ann@contoso.com', 'full@contoso.com']);
    assert.equal(got.body, MESSAGE, 'dot-stuffing undone by the server: same bytes');

    const lines = protocolLog.events.map((e) => `${e.event.event} ${e.event.data}`);
    assert.ok(protocolLog.events.every((e) => e.service === 'Delivery' && e.event.connectorId === 'Mailbox Delivery'));
    assert.ok(lines.includes('> LHLO mx.contoso.com'), lines.join('\n'));
    assert.ok(lines.includes('> RCPT TO:<nobody@contoso.com>'));
    assert.ok(lines.some((l) => l.startsWith('< 550')));
    assert.ok(lines.includes('> QUIT'));
  });

  test('connection reuse: several messages over one session, up to maxMessagesPerConnection', async () => {
    const before = sessions.count;
    const agent = createLmtpAgent({ target: { host: '127.0.0.1', port }, connectorName: 'X', lhloName: 'mx', logger: captureLogger().logger, protocolLog: captureProtocolLog(), maxMessagesPerConnection: 2 });
    for (let i = 0; i < 3; i++) {
      const r = await agent.deliver(await spooled(dir), new AbortController().signal);
      assert.equal(r.outcomes.get('bob@contoso.com')?.kind, 'delivered');
    }
    await agent.close();
    assert.equal(sessions.count - before, 2, 'two sessions for three messages with a limit of two');
  });

  test('nothing listening: every recipient deferred and connectionFailure set', async () => {
    const agent = createLmtpAgent({ target: { socket: join(dir, 'no-such.sock') }, connectorName: 'X', lhloName: 'mx', logger: captureLogger().logger, protocolLog: captureProtocolLog() });
    const r = await agent.deliver(await spooled(dir, MESSAGE, ['a@contoso.com', 'b@contoso.com']), new AbortController().signal);
    assert.equal(r.connectionFailure, true);
    assert.deepEqual([...r.outcomes.values()].map((o) => o.kind), ['deferred', 'deferred']);
  });

  test('over a UNIX socket, chosen by mailboxDelivery.type lmtp', async () => {
    const sock = join(dir, 'lmtp.sock');
    const unixServer = lmtpServer(received, { count: 0 });
    await new Promise<void>((r) => unixServer.listen(sock, r));
    try {
      const config = {
        server: { fqdn: 'mx.contoso.com' },
        mailboxDelivery: { type: 'lmtp', lmtp: { socket: sock }, maildirRoot: '/unused/{domain}/{local}', aliases: {}, recipientValidation: false },
        transportService: { maxConcurrentMailboxDeliveries: 20, fsyncEnabled: true },
      } as unknown as Config;
      const agent = createMailboxAgent({ config, logger: captureLogger().logger, protocolLog: captureProtocolLog() });
      const r = await agent.deliver(await spooled(dir, MESSAGE, ['sock@contoso.com']), new AbortController().signal);
      await agent.close?.();
      assert.equal(r.outcomes.get('sock@contoso.com')?.kind, 'delivered');
      assert.deepEqual(received.at(-1)?.to, ['sock@contoso.com']);
    } finally {
      await new Promise<void>((r) => unixServer.close(() => r()));
    }
  });

  test('a server that stops answering mid-session: recipients deferred, not lost', async () => {
    const { createServer } = await import('node:net');
    const silent = createServer((sock) => {
      sock.write('220 silent LMTP\r\n');
      sock.on('data', (d) => {
        if (d.toString().startsWith('LHLO')) sock.write('250-silent\r\n250 8BITMIME\r\n');
        // MAIL FROM and later: no answer
      });
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const agent = createLmtpAgent({ target: { host: '127.0.0.1', port: (silent.address() as { port: number }).port }, connectorName: 'X', lhloName: 'mx', logger: captureLogger().logger, protocolLog: captureProtocolLog(), timeoutMs: 300 });
      const r = await agent.deliver(await spooled(dir), new AbortController().signal);
      const o = r.outcomes.get('bob@contoso.com');
      assert.equal(o?.kind, 'deferred');
      await agent.close();
    } finally {
      silent.close();
    }
  });

  test('recipient probe for recipientValidation: exists, unknown, tempfail', async () => {
    const target = { host: '127.0.0.1', port };
    assert.equal(await checkLmtpRecipient(target, 'ann@contoso.com', { lhloName: 'mx' }), 'exists');
    assert.equal(await checkLmtpRecipient(target, 'nobody@contoso.com', { lhloName: 'mx' }), 'unknown');
    assert.equal(await checkLmtpRecipient({ socket: join(dir, 'absent.sock') }, 'ann@contoso.com', { lhloName: 'mx' }), 'tempfail');
  });
});
