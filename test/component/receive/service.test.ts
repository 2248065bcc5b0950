import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { IntakeError } from '../../../src/model/intake.js';
import { ReceiveService } from '../../../src/receive/service.js';
import { LineClient } from '../../helpers/smtp-client.js';
import { message, startHarness, testPki } from './harness.js';

describe('Receive service listeners and sessions', () => {
  test('the local endpoint in the protocol log is the address the client reached, on wildcard and specific listeners', async () => {
    const h = await startHarness({
      connectors: [
        { name: 'Wildcard', usage: 'Internet', bindings: ['0.0.0.0:0'] },
        { name: 'Specific', usage: 'Internet', bindings: ['127.0.0.3:0'] },
      ],
    });
    try {
      for (const [connector, host] of [['Wildcard', '127.0.0.2'], ['Wildcard', '127.0.0.1'], ['Specific', '127.0.0.3']] as const) {
        const port = h.port(connector);
        const c = await LineClient.connect(port, { host });
        assert.equal((await c.read()).code, 220);
        const local = c.socket.localPort;
        assert.equal((await c.cmd('QUIT')).code, 221);
        await c.waitClosed();
        const line = new RegExp(`EX01\\\\${connector},[0-9A-F]{16},0,${host.replace(/\./g, '\\.')}:${port},127\\.0\\.0\\.1:${local},\\+`);
        const lines = await h.protocolLinesUntil(line, 3000);
        assert.ok(lines.some((l) => line.test(l)), `${connector} via ${host}: ${lines.filter((l) => l.includes(`:${local},`)).join(' | ')}`);
      }
    } finally {
      await h.close();
    }
  });

  test('connectors sharing a binding: the most specific remote range serves the client', async () => {
    const h = await startHarness({
      connectors: [
        { name: 'Everyone', usage: 'Internet', banner: '220 everyone ready' },
        { name: 'Loopback two', usage: 'Custom', permissionGroups: ['AnonymousUsers'], permissions: ['SMTPAcceptAnyRecipient'], remoteIPRanges: ['127.0.0.2'], banner: '220 relay ready' },
        { name: 'Loopback net', usage: 'Custom', permissionGroups: ['AnonymousUsers'], remoteIPRanges: ['127.0.0.0/8'], banner: '220 loopback ready' },
      ],
    });
    try {
      const port = h.port();
      const a = await LineClient.connect(port);
      assert.equal((await a.read()).raw, '220 loopback ready');
      const b = await LineClient.connect(port, { localAddress: '127.0.0.2' });
      assert.equal((await b.read()).raw, '220 relay ready');
      await b.cmd('EHLO relay.client');
      await b.cmd('MAIL FROM:<app@contoso.com>');
      assert.equal((await b.cmd('RCPT TO:<x@fabrikam.example>')).code, 250, 'the relay connector grants AcceptAnyRecipient');
      await a.cmd('EHLO other.client');
      await a.cmd('MAIL FROM:<app@fabrikam.example>');
      assert.equal((await a.cmd('RCPT TO:<x@fabrikam.example>')).code, 550);
      a.close();
      b.close();
    } finally {
      await h.close();
    }
  });

  test('greetingDelay: a client that talks before the greeting gets 554 5.5.0 and is dropped, nothing executed', async () => {
    const h = await startHarness({ connectors: [{ name: 'Slow', usage: 'Internet', greetingDelay: '300ms' }] });
    try {
      const c = await LineClient.connect(h.port());
      c.write('EHLO early.example\r\nMAIL FROM:<a@b.example>\r\n');
      assert.equal((await c.read()).raw, '554 5.5.0 Protocol error: client sent data before the greeting');
      await c.waitClosed();
      const polite = await LineClient.connect(h.port());
      assert.equal((await polite.read(3000)).code, 220);
      polite.close();
    } finally {
      await h.close();
    }
  });

  test('implicit TLS (port 465 style): TLS from the first byte, AUTH offered at once', async () => {
    const h = await startHarness({ tls: true, connectors: [{ name: 'Client Proxy', usage: 'Client', bindings: ['127.0.0.1:0'], tlsMode: 'implicit' }] });
    try {
      const c = await LineClient.connect(h.port(), { tls: true });
      assert.equal((await c.read()).code, 220);
      const ehlo = await c.cmd('EHLO c.example');
      assert.ok(ehlo.text.includes('AUTH LOGIN PLAIN'));
      assert.ok(!ehlo.text.includes('STARTTLS'));
      c.close();
    } finally {
      await h.close();
    }
  });

  test('start() fails naming the binding when the port is taken, leaving nothing listening', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet' }] });
    try {
      const svc = new ReceiveService({
        config: { ...h.config, receiveConnectors: [{ ...h.config.receiveConnectors[0]!, bindings: ['127.0.0.1:0', `127.0.0.2:0`] }, { ...h.config.receiveConnectors[0]!, name: 'B', bindings: [`127.0.0.1:${port}`] }] },
        intake: h.intake,
        logger: (await import('pino')).default({ level: 'silent' }),
        protocolLog: h.protocolLog,
      });
      await assert.rejects(svc.start(), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}.*address already in use`));
      assert.deepEqual(svc.address(), []);
    } finally {
      blocker.close();
      await h.close();
    }
  });

  test('reload: new bindings listen, removed ones stop, a session in flight keeps going', async () => {
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet', banner: '220 old' }] });
    try {
      const inFlight = await LineClient.connect(h.port());
      assert.equal((await inFlight.read()).raw, '220 old');
      await inFlight.cmd('EHLO x.example');
      const oldPort = h.port();
      const next = {
        ...h.config,
        receiveConnectors: [{ ...h.config.receiveConnectors[0]!, name: 'B', banner: '220 new', bindings: ['127.0.0.2:0'] }],
      };
      await h.service.reload(next);
      const ep = h.service.address();
      assert.equal(ep.length, 1);
      assert.equal(ep[0]!.binding, '127.0.0.2:0');
      const fresh = await LineClient.connect(ep[0]!.port, { host: '127.0.0.2' });
      assert.equal((await fresh.read()).raw, '220 new');
      await assert.rejects(LineClient.connect(oldPort), /ECONNREFUSED/);
      // the old session still works
      await inFlight.cmd('MAIL FROM:<a@fabrikam.example>');
      assert.equal((await inFlight.cmd('RCPT TO:<bob@contoso.com>')).code, 250);
      inFlight.close();
      fresh.close();
    } finally {
      await h.close();
    }
  });

  test('stop(grace): a transaction in progress finishes, nothing new starts, idle sessions get 421 4.3.2', async () => {
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet' }] });
    const busy = await LineClient.connect(h.port());
    await busy.read();
    await busy.cmd('EHLO x.example');
    await busy.cmd('MAIL FROM:<a@fabrikam.example>');
    const idle = await LineClient.connect(h.port());
    await idle.read();
    await idle.cmd('EHLO y.example');
    const stopping = h.service.stop(1000);
    assert.equal((await busy.cmd('RCPT TO:<bob@contoso.com>')).code, 250);
    assert.equal((await busy.cmd('DATA')).code, 354);
    assert.equal((await busy.cmd(`${message()}.`)).code, 250);
    assert.equal(h.intake.stored.length, 1);
    assert.equal((await busy.cmd('MAIL FROM:<a@fabrikam.example>')).raw, '421 4.3.2 Service shutting down');
    await busy.waitClosed();
    assert.equal((await idle.read(5000)).raw, '421 4.3.2 Service shutting down');
    await idle.waitClosed();
    await stopping;
    await h.close();
  });

  test('per-source connection limit: 421 4.3.2', async () => {
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet', maxInboundConnectionPerSource: 1 }] });
    try {
      const a = await LineClient.connect(h.port());
      assert.equal((await a.read()).code, 220);
      const b = await LineClient.connect(h.port());
      assert.equal((await b.read()).raw, '421 4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel');
      await b.waitClosed();
      a.close();
    } finally {
      await h.close();
    }
  });

  test('message rate limit per source: 421 4.4.2', async () => {
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet', messageRateLimit: 1 }] });
    try {
      const c = await LineClient.connect(h.port());
      await c.read();
      await c.cmd('EHLO x.example');
      assert.equal((await c.cmd('MAIL FROM:<a@fabrikam.example>')).code, 250);
      await c.cmd('RSET');
      assert.equal((await c.cmd('MAIL FROM:<a@fabrikam.example>')).raw, '421 4.4.2 Message submission rate for this client has exceeded the configured limit');
      await c.waitClosed();
    } finally {
      await h.close();
    }
  });

  test('inactivity timeout: 451 4.7.0 and the connection closes', async () => {
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet', connectionInactivityTimeout: '300ms', connectionTimeout: '10s' }] });
    try {
      const c = await LineClient.connect(h.port());
      await c.read();
      assert.equal((await c.read(5000)).raw, '451 4.7.0 Timeout waiting for client input');
      await c.waitClosed();
    } finally {
      await h.close();
    }
  });

  test('bare LF in DATA is refused when bareLinefeedRejectionEnabled; an intake failure gives its reply', async () => {
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet', bareLinefeedRejectionEnabled: true }] });
    try {
      const c = await LineClient.connect(h.port());
      await c.read();
      await c.cmd('EHLO x.example');
      await c.cmd('MAIL FROM:<a@fabrikam.example>');
      await c.cmd('RCPT TO:<bob@contoso.com>');
      await c.cmd('DATA');
      c.write('Subject: x\r\n\r\nbare\nline\r\n.\r\n');
      assert.equal((await c.read()).raw, '554 5.6.0 Invalid message content, contains bare linefeeds');
      h.intake.fail = new IntakeError({ code: 452, enhanced: '4.3.1', text: 'Insufficient system resources' }, 'disk full');
      await c.cmd('MAIL FROM:<a@fabrikam.example>');
      await c.cmd('RCPT TO:<bob@contoso.com>');
      await c.cmd('DATA');
      assert.equal((await c.cmd(`${message()}.`)).raw, '452 4.3.1 Insufficient system resources');
      assert.equal(h.intake.stored.length, 0);
      c.close();
    } finally {
      await h.close();
    }
  });

  test('tarpit: refusals to anonymous clients are delayed but pipelined replies stay in order', async () => {
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet', tarpitInterval: '150ms' }] });
    try {
      const c = await LineClient.connect(h.port());
      await c.read();
      await c.cmd('EHLO x.example');
      c.write('MAIL FROM:<a@fabrikam.example>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<bob@contoso.com>\r\nNOOP\r\n');
      assert.equal((await c.read()).code, 250);
      assert.equal((await c.read()).code, 550);
      assert.equal((await c.read()).raw, '250 2.1.5 Recipient OK');
      assert.equal((await c.read()).raw, '250 2.0.0 OK');
      c.close();
    } finally {
      await h.close();
    }
  });

  test('maxHeaderSize: 552 5.3.4 Header size exceeds fixed maximum size', async () => {
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet', maxHeaderSize: 200 }] });
    try {
      const c = await LineClient.connect(h.port());
      await c.read();
      await c.cmd('EHLO x.example');
      await c.cmd('MAIL FROM:<a@fabrikam.example>');
      await c.cmd('RCPT TO:<bob@contoso.com>');
      await c.cmd('DATA');
      assert.equal((await c.cmd(`${message({ 'X-Long': 'y'.repeat(300) })}.`)).raw, '552 5.3.4 Header size exceeds fixed maximum size');
      c.close();
    } finally {
      await h.close();
    }
  });

  test('connectionTimeout: 421 4.4.1 when the session lives too long', async () => {
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet', connectionTimeout: '300ms', connectionInactivityTimeout: '10s' }] });
    try {
      const c = await LineClient.connect(h.port());
      await c.read();
      await c.cmd('EHLO x.example');
      assert.equal((await c.read(5000)).raw, '421 4.4.1 Connection timed out');
      await c.waitClosed();
    } finally {
      await h.close();
    }
  });
});

describe('client certificates', () => {
  test('an organization server proven by mutual TLS gets ExchangeServers permissions; without a certificate nothing', async () => {
    const pki = testPki();
    const h = await startHarness({
      mutualTls: true,
      connectors: [{ name: 'Org', usage: 'Internal', bindings: ['127.0.0.1:0'] }],
      extra: { organization: { servers: [{ name: 'EX02', fqdn: 'ex02.contoso.test' }] } },
    });
    try {
      const peer = await LineClient.connect(h.port());
      await peer.read();
      await peer.cmd('EHLO ex02.contoso.test');
      await peer.cmd('STARTTLS');
      await peer.upgrade({ key: pki.clientKey, cert: pki.clientCert });
      await peer.cmd('EHLO ex02.contoso.test');
      assert.equal((await peer.cmd('MAIL FROM:<ceo@contoso.com> SIZE=999999999999')).code, 250, 'BypassMessageSizeLimit');
      assert.equal((await peer.cmd('RCPT TO:<x@fabrikam.example>')).code, 250, 'AcceptAnyRecipient');
      await peer.cmd('DATA');
      assert.equal((await peer.cmd(`${message({ 'X-MS-Exchange-Organization-SCL': '-1' })}.`)).code, 250);
      assert.match(h.intake.stored.at(-1)!.content, /X-MS-Exchange-Organization-SCL: -1/, 'org headers kept for servers');
      assert.equal(h.intake.stored.at(-1)!.req.source.tls?.authorized, true);
      peer.close();

      const stranger = await LineClient.connect(h.port());
      await stranger.read();
      await stranger.cmd('EHLO who.example');
      await stranger.cmd('STARTTLS');
      await stranger.upgrade();
      await stranger.cmd('EHLO who.example');
      assert.equal((await stranger.cmd('MAIL FROM:<ceo@contoso.com>')).raw, '530 5.7.1 Client was not authenticated');
      stranger.close();
      const lines = (await h.protocolLinesUntil(/Client certificate proves an organization server/)).join('\n');
      assert.match(lines, /ex02\.contoso\.test,Client certificate proves an organization server/);
    } finally {
      await h.close();
    }
  });
});

describe('connection share per source', () => {
  test('maxInboundConnectionPercentagePerSource limits one source to its share of the free connections', async () => {
    const h = await startHarness({ connectors: [{ name: 'A', usage: 'Internet', maxInboundConnection: 10, maxInboundConnectionPerSource: 'unlimited', maxInboundConnectionPercentagePerSource: 10 }] });
    try {
      const a = await LineClient.connect(h.port());
      assert.equal((await a.read()).code, 220);
      const b = await LineClient.connect(h.port());
      assert.equal((await b.read()).raw, '421 4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel');
      a.close();
    } finally {
      await h.close();
    }
  });
});
