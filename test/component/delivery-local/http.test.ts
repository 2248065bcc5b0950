import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createDeliveryAgentConnectorAgent, createHttpAgent } from '../../../src/delivery/http.js';
import type { Config, EffectiveDeliveryAgentConnector } from '../../../src/config/defaults.js';
import { captureLogger, captureProtocolLog, MESSAGE, spooled, tempDir } from './support.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

describe('HTTP Delivery Agent connector', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let server: Server;
  let base: string;
  const seen: Seen[] = [];
  const slowResponses: (() => void)[] = [];
  const agents: { close(): Promise<void> }[] = [];

  before(async () => {
    ({ dir, cleanup } = await tempDir('http'));
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8') });
        const status = Number(/\/status\/(\d+)/.exec(req.url ?? '')?.[1] ?? 200);
        if (req.url?.startsWith('/slow')) {
          slowResponses.push(() => res.end('late'));
          return;
        }
        res.statusCode = status;
        res.end(status === 400 ? 'missing ticket field' : 'ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const a of agents) await a.close();
    for (const f of slowResponses) f();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await cleanup();
  });

  const agentFor = (path: string, timeoutMs = 5000) => {
    const protocolLog = captureProtocolLog();
    const agent = createHttpAgent({ connectorName: 'Tickets', url: `${base}${path}`, timeoutMs, logger: captureLogger().logger, protocolLog });
    agents.push(agent);
    return { agent, protocolLog };
  };

  test('200: POSTs the message with the envelope in headers; delivered; protocol log written', async () => {
    const { agent, protocolLog } = agentFor('/status/200');
    const batch = await spooled(dir, MESSAGE, ['t1@tickets.contoso.com', 't2@tickets.contoso.com']);
    const result = await agent.deliver(batch, new AbortController().signal);
    assert.deepEqual([...result.outcomes.values()].map((o) => o.kind), ['delivered', 'delivered']);
    const req = seen.at(-1)!;
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['content-type'], 'message/rfc822');
    assert.equal(req.headers['x-mailyard-sender'], '<ann@fabrikam.com>');
    const perRecipient = req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]!.toLowerCase() === 'x-mailyard-recipient').length;
    assert.equal(perRecipient, 2);
    assert.equal(req.headers['x-mailyard-recipients'], 't1@tickets.contoso.com, t2@tickets.contoso.com');
    assert.equal(req.headers['x-mailyard-queue-id'], batch.messageId);
    assert.equal(req.body, MESSAGE);
    assert.ok(protocolLog.events.every((e) => e.service === 'Delivery'));
    assert.deepEqual(protocolLog.events.map((e) => e.event.event), ['+', '>', '<', '-']);
    assert.match(protocolLog.events[2]!.event.data, /^HTTP 200/);
  });

  test('503 defers', async () => {
    const { agent } = agentFor('/status/503');
    const result = await agent.deliver(await spooled(dir), new AbortController().signal);
    const o = result.outcomes.get('bob@contoso.com');
    assert.equal(o?.kind, 'deferred');
    assert.match(o?.reply?.text ?? '', /HTTP 503/);
  });

  test('429 and 408 defer', async () => {
    for (const s of [429, 408]) {
      const { agent } = agentFor(`/status/${s}`);
      const result = await agent.deliver(await spooled(dir), new AbortController().signal);
      assert.equal(result.outcomes.get('bob@contoso.com')?.kind, 'deferred', String(s));
    }
  });

  test('400 fails with an NDR reply carrying what the server said', async () => {
    const { agent } = agentFor('/status/400');
    const result = await agent.deliver(await spooled(dir), new AbortController().signal);
    const o = result.outcomes.get('bob@contoso.com');
    assert.equal(o?.kind, 'failed');
    if (o?.kind === 'failed') {
      assert.equal(o.reply.code, 554);
      assert.match(o.reply.text, /HTTP 400.*missing ticket field/);
    }
  });

  test('a server that does not answer in time: deferred', async () => {
    const { agent } = agentFor('/slow', 300);
    const result = await agent.deliver(await spooled(dir), new AbortController().signal);
    const o = result.outcomes.get('bob@contoso.com');
    assert.equal(o?.kind, 'deferred');
    assert.match(o?.reply?.text ?? '', /timeout/);
  });

  test('nothing listening: deferred as a connection failure', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const agent = createHttpAgent({ connectorName: 'X', url: `http://127.0.0.1:${port}/`, timeoutMs: 2000, logger: captureLogger().logger, protocolLog: captureProtocolLog() });
    agents.push(agent);
    const result = await agent.deliver(await spooled(dir), new AbortController().signal);
    assert.equal(result.outcomes.get('bob@contoso.com')?.kind, 'deferred');
    assert.equal(result.connectionFailure, true);
  });

  test('the connector factory builds the http agent from the connector settings', async () => {
    const connector = { name: 'Tickets', deliveryProtocol: 'http', url: `${base}/status/202`, timeout: 5000, protocolLoggingLevel: 'Verbose', maxConcurrentConnections: 5, maxMessagesPerConnection: 20 } as unknown as EffectiveDeliveryAgentConnector;
    const agent = createDeliveryAgentConnectorAgent({ connector, config: {} as Config, logger: captureLogger().logger, protocolLog: captureProtocolLog() });
    const result = await agent.deliver(await spooled(dir), new AbortController().signal);
    await agent.close?.();
    assert.equal(result.outcomes.get('bob@contoso.com')?.kind, 'delivered');
  });

  test('connections are kept alive between messages', async () => {
    const { agent } = agentFor('/status/200');
    const ports = new Set<number>();
    const onConn = (s: import('node:net').Socket): void => void ports.add(s.remotePort ?? 0);
    server.on('connection', onConn);
    try {
      for (let i = 0; i < 3; i++) assert.equal((await agent.deliver(await spooled(dir), new AbortController().signal)).outcomes.get('bob@contoso.com')?.kind, 'delivered');
    } finally {
      server.off('connection', onConn);
    }
    assert.equal(ports.size, 1);
  });
});
