/**
 * An MX (or smart host) that points back at this server (RFC 5321 5.1): the SMTP agent must not
 * connect to itself. "Us" is a real SMTP listener on 127.0.0.1:PORT standing for the daemon's own
 * Receive connector; the in-process DNS server points MX records at it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSmtpDeliveryAgent, type SmtpAgentDeps } from '../../../src/delivery/smtp/agent.js';
import type { DeliveryAgent, RecipientOutcome } from '../../../src/model/outcome.js';
import type { NextHopKey } from '../../../src/model/routing.js';
import { createNodeResolver } from '../../../src/platform/dns.js';
import { Transport } from '../../../src/queue/manager.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { startSinkOnPort, startSmtpSink, type SmtpSink } from '../../helpers/smtp-sink.js';
import { CaptureTracking, RecordingAgent, makeConfig as makeQueueConfig, request, tempDir, waitFor } from '../queue/helpers.js';
import { MemoryProtocolLog, SIMPLE, makeConfig, signal, silent, tempSpool, type TempSpool } from './setup.js';

function reply(o: RecipientOutcome | undefined): string {
  return o && o.reply ? `${o.reply.code} ${o.reply.enhanced ?? ''} ${o.reply.text}` : '';
}

describe('an MX that points back at this server', () => {
  let dns: TestDnsServer;
  let us: SmtpSink; // 127.0.0.1:P — this server's own Receive connector
  let better: SmtpSink; // 127.0.0.2:P — a more preferred MX
  let worse: SmtpSink; // 127.0.0.3:P — a less preferred MX
  let spool: TempSpool;

  before(async () => {
    us = await startSmtpSink();
    better = await startSinkOnPort('127.0.0.2', us.port);
    worse = await startSinkOnPort('127.0.0.3', us.port);
    dns = await startDnsServer({
      'loop.test': { mx: [{ exchange: 'mx.loop.test', preference: 10 }] },
      'mx.loop.test': { a: ['127.0.0.1'] },
      // we are the primary; a backup exists but is less preferred: still a loop
      'primary.test': { mx: [{ exchange: 'us.primary.test', preference: 10 }, { exchange: 'backup.primary.test', preference: 20 }] },
      'us.primary.test': { a: ['127.0.0.1'] },
      'backup.primary.test': { a: ['127.0.0.3'] },
      // we are at 20: only the 10 is tried, never the 30
      'mixed.test': {
        mx: [
          { exchange: 'far.mixed.test', preference: 30 },
          { exchange: 'us.mixed.test', preference: 20 },
          { exchange: 'near.mixed.test', preference: 10 },
        ],
      },
      'near.mixed.test': { a: ['127.0.0.2'] },
      'us.mixed.test': { a: ['127.0.0.1'] },
      'far.mixed.test': { a: ['127.0.0.3'] },
      // we are at 20 and the only better host is down: the mail waits, it never goes to the 30 or to us
      'mixeddown.test': {
        mx: [
          { exchange: 'dead.mixeddown.test', preference: 10 },
          { exchange: 'us.mixeddown.test', preference: 20 },
          { exchange: 'far.mixeddown.test', preference: 30 },
        ],
      },
      'dead.mixeddown.test': { a: ['127.0.0.4'] },
      'us.mixeddown.test': { a: ['127.0.0.1'] },
      'far.mixeddown.test': { a: ['127.0.0.3'] },
      // no MX: the domain's own A record is us
      'implicit.test': { a: ['127.0.0.1'] },
      // an MX named like our own FQDN (config server.fqdn is mail.contoso.test), whatever it resolves to
      'byname.test': { mx: [{ exchange: 'mail.contoso.test', preference: 5 }] },
      'mail.contoso.test': { a: ['127.0.0.3'] },
      // smart hosts by name
      'relay.loop.test': { a: ['127.0.0.1'] },
      'relay.other.test': { a: ['127.0.0.2'] },
    });
    spool = await tempSpool();
  });
  after(async () => {
    await Promise.all([us.close(), better.close(), worse.close(), dns.close(), spool.cleanup()]);
  });

  function agent(opts: { connector?: Record<string, unknown>; extra?: Record<string, unknown>; deps?: Partial<SmtpAgentDeps> } = {}) {
    const { config, connector } = makeConfig({ protocolLoggingLevel: 'Verbose', ...opts.connector }, { dns: { servers: [dns.address], timeout: '2s' }, ...opts.extra });
    return createSmtpDeliveryAgent({
      config,
      connector,
      resolver: createNodeResolver({ servers: [dns.address], timeoutMs: 1000 }),
      logger: silent,
      protocolLog: new MemoryProtocolLog(),
      port: us.port,
      selfEndpoints: () => [{ address: '127.0.0.1', port: us.port }],
      timeouts: { connect: 2000, greeting: 2000 },
      ...opts.deps,
    });
  }

  async function deliver(a: DeliveryAgent, domain: string, deliveryType: 'DnsConnectorDelivery' | 'SmartHostConnectorDelivery' = 'DnsConnectorDelivery') {
    const rcpt = `bob@${domain}`;
    const batch = await spool.batch({ deliveryType, nextHopDomain: domain, recipients: [rcpt], body: SIMPLE });
    const r = await a.deliver(batch, signal());
    await a.close?.();
    return { r, outcome: r.outcomes.get(rcpt) };
  }

  test('our own MX as the only one: 554 5.4.6 at once, no connection to ourselves', async () => {
    const before = us.connections;
    const { r, outcome } = await deliver(agent(), 'loop.test');
    assert.equal(outcome?.kind, 'failed');
    assert.match(reply(outcome), /^554 5\.4\.6 Mail for loop\.test loops back to this server: its MX host mx\.loop\.test \(preference 10\) points back to this server/);
    assert.equal(outcome?.kind === 'failed' && outcome.category, 'loop');
    assert.notEqual(r.connectionFailure, true, 'a loop is final, the queue must not retry the hop');
    assert.equal(us.connections, before, 'no connection to our own listener');
  });

  test('we are the most preferred MX: the less preferred backup is not used either', async () => {
    const before = worse.connections;
    const { outcome } = await deliver(agent(), 'primary.test');
    assert.match(reply(outcome), /^554 5\.4\.6 .*primary\.test/);
    assert.equal(worse.connections, before);
  });

  test('we are at preference 20: the mail goes to the 10, never to us or the 30', async () => {
    const [u, w, b] = [us.connections, worse.connections, better.messages.length];
    const { outcome } = await deliver(agent(), 'mixed.test');
    assert.equal(outcome?.kind, 'delivered');
    assert.equal(better.messages.length, b + 1);
    assert.deepEqual(better.messages.at(-1)!.rcptTo.map((x) => x.address), ['bob@mixed.test']);
    assert.equal(us.connections, u);
    assert.equal(worse.connections, w);
  });

  test('we are at preference 20 and the 10 is down: deferred, never sent to the 30 or to us', async () => {
    const [u, w] = [us.connections, worse.connections];
    const { r, outcome } = await deliver(agent(), 'mixeddown.test');
    assert.equal(outcome?.kind, 'deferred');
    assert.equal(r.connectionFailure, true);
    assert.equal(us.connections, u);
    assert.equal(worse.connections, w);
  });

  test('implicit MX (no MX records, the A record is us): 554 5.4.6', async () => {
    const { outcome } = await deliver(agent(), 'implicit.test');
    assert.match(reply(outcome), /^554 5\.4\.6 Mail for implicit\.test loops back to this server: the domain's own address/);
  });

  test('an address literal that is us: 554 5.4.6', async () => {
    const before = us.connections;
    const { outcome } = await deliver(agent(), '[127.0.0.1]');
    assert.match(reply(outcome), /^554 5\.4\.6 /);
    assert.equal(us.connections, before);
  });

  test('an MX host named like our FQDN is us even on another address', async () => {
    const before = worse.connections;
    const { outcome } = await deliver(agent(), 'byname.test');
    assert.match(reply(outcome), /^554 5\.4\.6 .*mail\.contoso\.test/);
    assert.equal(worse.connections, before);
  });

  test('a wildcard binding (0.0.0.0) covers 127.0.0.1 and the host interface addresses', async () => {
    const wildcard = agent({ deps: { selfEndpoints: () => [{ address: '0.0.0.0', port: us.port }] } });
    assert.match(reply((await deliver(wildcard, 'loop.test')).outcome), /^554 5\.4\.6 /);
    // the same from the configured Receive connector bindings alone (before the listeners report)
    const configured = agent({
      extra: { receiveConnectors: [{ name: 'Inbound', bindings: [`0.0.0.0:${us.port}`] }] },
      deps: { selfEndpoints: () => [] },
    });
    assert.match(reply((await deliver(configured, 'loop.test')).outcome), /^554 5\.4\.6 /);
  });

  test('our address on another port is somebody else: delivered', async () => {
    const b = us.messages.length;
    const other = agent({ deps: { selfEndpoints: () => [{ address: '127.0.0.1', port: us.port === 65535 ? 65534 : us.port + 1 }] } });
    const { outcome } = await deliver(other, 'loop.test');
    assert.equal(outcome?.kind, 'delivered');
    assert.equal(us.messages.length, b + 1);
  });

  test('a smart host that resolves to us: deferred 451 4.4.6 naming the connector, no connection', async () => {
    const before = us.connections;
    const a = agent({ connector: { dnsRoutingEnabled: false, smartHosts: [`relay.loop.test:${us.port}`] } });
    const { r, outcome } = await deliver(a, 'fabrikam.test', 'SmartHostConnectorDelivery');
    assert.equal(outcome?.kind, 'deferred');
    assert.match(reply(outcome), new RegExp(`^451 4\\.4\\.6 Smart host relay\\.loop\\.test:${us.port} is this server itself \\(mail loop\\); check smartHosts of Send connector "To Internet"`));
    assert.equal(r.connectionFailure, true);
    assert.equal(us.connections, before);
  });

  test('a smart host that is us is skipped when another one remains', async () => {
    const [u, b] = [us.connections, better.messages.length];
    const a = agent({ connector: { dnsRoutingEnabled: false, smartHosts: [`relay.loop.test:${us.port}`, `relay.other.test:${us.port}`] } });
    const { outcome } = await deliver(a, 'fabrikam.test', 'SmartHostConnectorDelivery');
    assert.equal(outcome?.kind, 'delivered');
    assert.equal(better.messages.length, b + 1);
    assert.equal(us.connections, u);
  });

  test('through the queue: the sender gets an NDR with 5.4.6 at once, nothing reaches us, no retry', async () => {
    const { dir, cleanup } = await tempDir();
    const config = makeQueueConfig(dir, {
      dns: { servers: [dns.address], timeout: '2s' },
      receiveConnectors: [{ name: 'Inbound', bindings: [`127.0.0.1:${us.port}`] }],
    });
    const tracking = new CaptureTracking();
    const mailbox = new RecordingAgent();
    const smtp = createSmtpDeliveryAgent({
      config,
      connector: config.sendConnectors[0]!,
      resolver: createNodeResolver({ servers: [dns.address], timeoutMs: 1000 }),
      logger: silent,
      protocolLog: new MemoryProtocolLog(),
      port: us.port,
      timeouts: { connect: 2000, greeting: 2000 },
    });
    const agents = (key: NextHopKey): DeliveryAgent => (key.deliveryType === 'DnsConnectorDelivery' ? smtp : mailbox.factory(key));
    const t = new Transport({ config, logger: silent, tracking, agents });
    await t.start();
    const before = us.connections;
    try {
      const accepted = await t.intake.accept(request('ann@contoso.com', ['bob@loop.test']), Buffer.from(SIMPLE));
      await waitFor(() => mailbox.batches.some((b) => b.mailFrom === null), 'the NDR to the sender', 8000);
      const ndr = mailbox.batches.find((b) => b.mailFrom === null)!;
      assert.deepEqual(ndr.recipients, ['ann@contoso.com']);
      assert.match(ndr.body, /5\.4\.6/);
      assert.match(ndr.body, /loop\.test loops back to this server/);
      const isFail = (e: (typeof tracking.events)[number]) => e.eventId === 'FAIL' && e.messageId === accepted.id;
      // The queue records the FAIL when it settles the outcome, which may come after the NDR went out.
      await waitFor(() => tracking.events.some(isFail), 'the FAIL tracking event', 8000);
      const fail = tracking.events.find(isFail)!;
      assert.match(fail.recipientStatus?.[0] ?? '', /^554 5\.4\.6 /);
      assert.equal(tracking.events.filter((e) => e.eventId === 'DEFER' && e.messageId === accepted.id).length, 0, 'failed at once, not after retries');
      assert.equal(us.connections, before, 'the message never came round to our own listener');
    } finally {
      await t.stop(100);
      await smtp.close?.();
      await cleanup();
    }
  });
});
