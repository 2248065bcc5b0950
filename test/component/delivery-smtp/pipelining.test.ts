/**
 * What a reused connection costs on the wire: PIPELINING batches (RFC 2920), no RSET after a
 * completed transaction, RSET after an aborted one, the message data in one write, a pooled
 * connection the peer has given up on replaced without losing the message, and the streamed path
 * for large messages giving the same bytes as the in-memory one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { createSmtpDeliveryAgent, INLINE_MAX_BYTES } from '../../../src/delivery/smtp/agent.js';
import type { DeliveryAgent, DeliveryBatch } from '../../../src/model/outcome.js';
import { startSmtpSink, type SinkOptions, type SmtpSink } from '../../helpers/smtp-sink.js';
import { MemoryProtocolLog, SIMPLE, makeConfig, signal, silent, useSpoolAndSinks } from './setup.js';

/** Received chunks of one connection as text (each chunk = one read on the server side). */
function chunks(s: SmtpSink, connection: number): string[] {
  return (s.wire[connection] ?? []).map((c) => c.toString('latin1'));
}

/**
 * A deliberately broken SMTP server: PIPELINING, every RCPT refused, and yet 354 to DATA (RFC 2920
 * says it must refuse). Records what the client wrote.
 */
async function brokenServer(): Promise<{ port: number; wire: string[]; close(): Promise<void> }> {
  const wire: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = '';
    let inData = false;
    socket.write('220 broken.test ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      wire.push(chunk.toString('latin1'));
      buffered += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buffered.indexOf('\r\n.\r\n');
          const bare = buffered.startsWith('.\r\n');
          if (end < 0 && !bare) return;
          buffered = bare ? buffered.slice(3) : buffered.slice(end + 5);
          inData = false;
          socket.write('250 2.0.0 Ok (empty message taken)\r\n');
          continue;
        }
        const eol = buffered.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffered.slice(0, eol).toUpperCase();
        buffered = buffered.slice(eol + 2);
        if (line.startsWith('EHLO')) socket.write('250-broken.test\r\n250 PIPELINING\r\n');
        else if (line.startsWith('MAIL') || line.startsWith('RSET')) socket.write('250 2.0.0 Ok\r\n');
        else if (line.startsWith('RCPT')) socket.write('550 5.1.1 No such user\r\n');
        else if (line === 'DATA') {
          inData = true;
          socket.write('354 Go ahead\r\n');
        } else if (line === 'QUIT') socket.end('221 2.0.0 Bye\r\n');
        else socket.write('502 5.5.2 Unknown\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    wire,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

describe('transaction cost on a reused connection: pipelining, RSET, one write for the data', () => {
  const fx = useSpoolAndSinks();
  const sink = fx.sink;

  function agent(port: number, log = new MemoryProtocolLog()): DeliveryAgent {
    const { config, connector } = makeConfig({ dnsRoutingEnabled: false, smartHosts: [`127.0.0.1:${port}`], protocolLoggingLevel: 'Verbose' });
    return createSmtpDeliveryAgent({ config, connector, resolver: null as never, logger: silent, protocolLog: log });
  }

  function batch(body: string | Buffer, recipients: readonly string[] = ['ann@fabrikam.test']): Promise<DeliveryBatch> {
    return fx.spool().batch({ deliveryType: 'SmartHostConnectorDelivery', nextHopDomain: 'smarthost', recipients, body });
  }

  test('PIPELINING offered: MAIL FROM, every RCPT TO and DATA arrive in one packet', async () => {
    const s = await sink();
    const a = agent(s.port);
    const r = await a.deliver(await batch(SIMPLE, ['ann@fabrikam.test', 'bob@fabrikam.test', 'cy@fabrikam.test']), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('cy@fabrikam.test')?.kind, 'delivered');
    const batched = chunks(s, 0).filter((c) => c.includes('MAIL FROM:'));
    assert.equal(batched.length, 1);
    assert.match(batched[0]!, /^MAIL FROM:<sender@contoso\.test>[^\r\n]*\r\nRCPT TO:<ann@fabrikam\.test>\r\nRCPT TO:<bob@fabrikam\.test>\r\nRCPT TO:<cy@fabrikam\.test>\r\nDATA\r\n$/);
  });

  test('PIPELINING not offered: one command at a time, each after the reply to the previous one', async () => {
    const s = await sink({ pipelining: false });
    const a = agent(s.port);
    const r = await a.deliver(await batch(SIMPLE, ['ann@fabrikam.test', 'bob@fabrikam.test']), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('bob@fabrikam.test')?.kind, 'delivered');
    const envelope = chunks(s, 0).filter((c) => /^(MAIL|RCPT|DATA)/m.test(c));
    assert.deepEqual(envelope.map((c) => c.split(/[:\r]/)[0]), ['MAIL FROM', 'RCPT TO', 'RCPT TO', 'DATA']);
  });

  test('the message data goes out in one write, normalised, dot-stuffed once, "." line included', async () => {
    const s = await sink();
    const a = agent(s.port);
    const r = await a.deliver(await batch('Subject: one write\r\n\r\n.dot\nbare LF\r\nend'), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.ok(chunks(s, 0).includes('Subject: one write\r\n\r\n..dot\r\nbare LF\r\nend\r\n.\r\n'), 'data and terminator in one packet');
    assert.equal(s.messages[0]!.data.toString('latin1'), 'Subject: one write\r\n\r\n.dot\r\nbare LF\r\nend\r\n');
  });

  test('no RSET between completed transactions, a refused recipient included', async () => {
    const s = await sink({ rcptReplies: { 'nobody@fabrikam.test': '550 5.1.1 No such user' } });
    const log = new MemoryProtocolLog();
    const a = agent(s.port, log);
    const r1 = await a.deliver(await batch(SIMPLE, ['ann@fabrikam.test', 'nobody@fabrikam.test']), signal());
    const r2 = await a.deliver(await batch(SIMPLE), signal());
    const r3 = await a.deliver(await batch(SIMPLE), signal());
    await a.close?.();
    assert.equal(r1.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(r1.outcomes.get('nobody@fabrikam.test')?.kind, 'failed');
    assert.equal(r2.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(r3.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(s.connections, 1);
    const wire = chunks(s, 0).join('');
    assert.equal(count(wire, 'MAIL FROM:'), 3);
    assert.equal(count(wire, 'RSET'), 0, 'no RSET on the wire');
    assert.ok(!log.lines().includes('> RSET'));
  });

  test('every recipient refused: nothing delivered, RSET before the next transaction', async () => {
    const s = await sink({ rcptReplies: { 'nobody@fabrikam.test': '550 5.1.1 No such user', 'later@fabrikam.test': '450 4.2.1 Mailbox busy' } });
    const a = agent(s.port);
    const r1 = await a.deliver(await batch(SIMPLE, ['nobody@fabrikam.test', 'later@fabrikam.test']), signal());
    const r2 = await a.deliver(await batch(SIMPLE), signal());
    await a.close?.();
    assert.equal(r1.outcomes.get('nobody@fabrikam.test')?.kind, 'failed');
    assert.match(r1.outcomes.get('nobody@fabrikam.test')?.reply?.text ?? '', /No such user/);
    assert.equal(r1.outcomes.get('later@fabrikam.test')?.kind, 'deferred');
    assert.equal(r2.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(s.messages.length, 1, 'only the second message reached the sink');
    assert.equal(s.connections, 1);
    const wire = chunks(s, 0).join('');
    assert.equal(count(wire, 'RSET\r\n'), 1);
    const firstData = wire.indexOf('DATA\r\n');
    const rset = wire.indexOf('RSET\r\n');
    const secondMail = wire.indexOf('MAIL FROM:', firstData);
    assert.ok(firstData < rset && rset < secondMail, 'RSET between the aborted transaction and the next MAIL');
  });

  test('354 after every RCPT was refused: "." at once, nothing delivered, RSET before the next message', async () => {
    const b = await brokenServer();
    try {
      const a = agent(b.port);
      const r1 = await a.deliver(await batch('Subject: never sent\r\n\r\nbody\r\n', ['nobody@fabrikam.test', 'none@fabrikam.test']), signal());
      const r2 = await a.deliver(await batch('Subject: second\r\n\r\nbody\r\n', ['nobody@fabrikam.test']), signal());
      await a.close?.();
      for (const r of [r1, r2]) {
        const o = r.outcomes.get('nobody@fabrikam.test');
        assert.equal(o?.kind, 'failed');
        assert.match(o?.reply?.text ?? '', /No such user/);
      }
      assert.equal(r1.outcomes.get('none@fabrikam.test')?.kind, 'failed');
      const text = b.wire.join('');
      assert.doesNotMatch(text, /Subject:/, 'no message data after the 354');
      assert.match(text, /DATA\r\n\.\r\nRSET\r\nMAIL FROM:/, 'the empty message is ended, the session reset, then reused');
    } finally {
      await b.close();
    }
  });

  test('refused data: RSET before the next transaction, which is delivered on the same connection', async () => {
    let n = 0;
    const server = new SMTPServer({
      logger: false,
      disabledCommands: ['STARTTLS', 'AUTH'],
      authOptional: true,
      onData(stream, _session, cb) {
        stream.resume();
        stream.on('end', () => (n++ === 0 ? cb(Object.assign(new Error('5.7.1 Content refused'), { responseCode: 554 })) : cb()));
      },
    });
    const wire: string[] = [];
    const netServer = (server as unknown as { server: import('node:net').Server }).server;
    netServer.on('connection', (socket: import('node:net').Socket) => socket.on('data', (c: Buffer) => wire.push(c.toString('latin1'))));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (netServer.address() as import('node:net').AddressInfo).port;
      const a = agent(port);
      const r1 = await a.deliver(await batch(SIMPLE), signal());
      const r2 = await a.deliver(await batch(SIMPLE), signal());
      await a.close?.();
      assert.equal(r1.outcomes.get('ann@fabrikam.test')?.kind, 'failed');
      assert.equal(r2.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
      const text = wire.join('');
      assert.equal(count(text, 'RSET\r\n'), 1);
      assert.ok(text.indexOf('RSET\r\n') < text.lastIndexOf('MAIL FROM:'));
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('a pooled connection the peer ends with 421 at the next MAIL: the message goes over a new one', async () => {
    const perSession = new Map<string, number>();
    let delivered = 0;
    let connections = 0;
    const server = new SMTPServer({
      logger: false,
      disabledCommands: ['STARTTLS', 'AUTH'],
      authOptional: true,
      onConnect(_session, cb) {
        connections++;
        cb();
      },
      onMailFrom(_address, session, cb) {
        const seen = (perSession.get(session.id) ?? 0) + 1;
        perSession.set(session.id, seen);
        // The second transaction of a connection: the server has timed the session out.
        if (seen === 2) return cb(Object.assign(new Error('4.4.2 Idle timeout, closing connection'), { responseCode: 421 }));
        cb();
      },
      onData(stream, _session, cb) {
        stream.resume();
        stream.on('end', () => {
          delivered++;
          cb();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const netServer = (server as unknown as { server: import('node:net').Server }).server;
      const port = (netServer.address() as import('node:net').AddressInfo).port;
      const a = agent(port);
      const r1 = await a.deliver(await batch(SIMPLE), signal());
      const r2 = await a.deliver(await batch(SIMPLE), signal());
      await a.close?.();
      assert.equal(r1.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
      assert.equal(r2.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
      assert.equal(r2.connectionFailure, undefined);
      assert.equal(delivered, 2);
      assert.equal(connections, 2);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('a message above the in-memory limit is streamed and reaches the peer with the same bytes', async () => {
    const s = await sink();
    const a = agent(s.port);
    const tricky = 'Subject: big\r\n\r\n.leading dot\r\n.\r\nbare LF here\nand\rbare CR\r\nsmuggle\n.\nend\r\n';
    const filler = `${'x'.repeat(78)}\r\n`.repeat(Math.ceil((INLINE_MAX_BYTES + 1) / 80));
    const small = await a.deliver(await batch(tricky), signal());
    const big = await a.deliver(await batch(tricky + filler + '.last\n'), signal());
    await a.close?.();
    assert.equal(small.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(big.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    const expected = 'Subject: big\r\n\r\n.leading dot\r\n.\r\nbare LF here\r\nand\r\nbare CR\r\nsmuggle\r\n.\r\nend\r\n';
    assert.equal(s.messages[0]!.data.toString('latin1'), expected);
    assert.equal(s.messages[1]!.data.toString('latin1'), expected + filler + '.last\r\n');
  });
});
