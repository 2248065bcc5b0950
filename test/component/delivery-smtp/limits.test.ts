import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSmtpDeliveryAgent } from '../../../src/delivery/smtp/agent.js';
import { createProtocolLog } from '../../../src/logging/protocol-log.js';
import { startSmtpSink, type SmtpSink } from '../../helpers/smtp-sink.js';
import { MemoryProtocolLog, SIMPLE, makeConfig, signal, silent, tempSpool, type TempSpool } from './setup.js';

describe('connection limits, idle timeout, abort, protocol log file', () => {
  let spool: TempSpool;
  let sink: SmtpSink;
  before(async () => {
    spool = await tempSpool();
    sink = await startSmtpSink();
  });
  after(async () => {
    await Promise.all([sink.close(), spool.cleanup()]);
  });

  const batch = (nextHopDomain = 'smarthost', recipients = ['ann@fabrikam.test']) =>
    spool.batch({ deliveryType: 'SmartHostConnectorDelivery', nextHopDomain, recipients, body: SIMPLE });

  test('maxPerDomainOutboundConnections: 1 → concurrent deliveries share one connection', async () => {
    const s = await startSmtpSink();
    try {
      const { config, connector } = makeConfig({ dnsRoutingEnabled: false, smartHosts: [`127.0.0.1:${s.port}`] }, { transportService: { maxPerDomainOutboundConnections: 1 } });
      const a = createSmtpDeliveryAgent({ config, connector, resolver: null as never, logger: silent, protocolLog: new MemoryProtocolLog() });
      const results = await Promise.all([1, 2, 3, 4].map(async () => a.deliver(await batch(), signal())));
      await a.close?.();
      assert.ok(results.every((r) => r.outcomes.get('ann@fabrikam.test')?.kind === 'delivered'));
      assert.equal(s.messages.length, 4);
      assert.equal(s.connections, 1);
    } finally {
      await s.close();
    }
  });

  test('maxOutboundConnections: 1 → an idle session of another next hop is ended to make room', async () => {
    const s = await startSmtpSink();
    try {
      const { config, connector } = makeConfig({ dnsRoutingEnabled: false, smartHosts: [`127.0.0.1:${s.port}`] }, { transportService: { maxOutboundConnections: 1 } });
      const a = createSmtpDeliveryAgent({ config, connector, resolver: null as never, logger: silent, protocolLog: new MemoryProtocolLog() });
      const r1 = await a.deliver(await batch('hop-one'), signal());
      const r2 = await a.deliver(await batch('hop-two'), signal());
      await a.close?.();
      assert.equal(r1.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
      assert.equal(r2.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
      assert.equal(s.connections, 2);
      assert.equal(s.maxConcurrent, 1);
    } finally {
      await s.close();
    }
  });

  test('connectionInactivityTimeout ends an idle pooled connection', async () => {
    const s = await startSmtpSink();
    try {
      const { config, connector } = makeConfig({ dnsRoutingEnabled: false, smartHosts: [`127.0.0.1:${s.port}`], connectionInactivityTimeout: '1s' });
      const a = createSmtpDeliveryAgent({ config, connector, resolver: null as never, logger: silent, protocolLog: new MemoryProtocolLog() });
      await a.deliver(await batch(), signal());
      assert.equal(s.closed, 0);
      await s.waitFor(() => s.closed === 1, 5000);
      await a.close?.();
    } finally {
      await s.close();
    }
  });

  test('an aborted delivery defers and never reports delivered', async () => {
    const s = await startSmtpSink({ stallData: true });
    try {
      const { config, connector } = makeConfig({ dnsRoutingEnabled: false, smartHosts: [`127.0.0.1:${s.port}`] });
      const a = createSmtpDeliveryAgent({ config, connector, resolver: null as never, logger: silent, protocolLog: new MemoryProtocolLog() });
      const ac = new AbortController();
      const pending = a.deliver(await batch(), ac.signal);
      await s.waitFor(() => s.messages.length === 1);
      ac.abort();
      const r = await pending;
      await a.close?.();
      assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'deferred');
    } finally {
      await s.close();
    }
  });

  test('send protocol log file: Hub/ProtocolLog/SmtpSend/SEND*.LOG in Exchange CSV', async () => {
    const logDir = await mkdtemp(join(tmpdir(), 'mailyard-sendlog-'));
    try {
      const { config, connector } = makeConfig({ dnsRoutingEnabled: false, smartHosts: [`127.0.0.1:${sink.port}`], protocolLoggingLevel: 'Verbose' });
      const writer = createProtocolLog(logDir, config.transportService, silent);
      const a = createSmtpDeliveryAgent({ config, connector, resolver: null as never, logger: silent, protocolLog: writer });
      await a.deliver(await batch(), signal());
      await a.close?.();
      await sink.waitFor(() => sink.closed >= 1);
      await writer.close();
      const dir = join(logDir, 'Hub', 'ProtocolLog', 'SmtpSend');
      const files = await readdir(dir);
      assert.equal(files.length, 1);
      assert.match(files[0]!, /^SEND\d{10}-\d+\.LOG$/);
      const text = await readFile(join(dir, files[0]!), 'utf8');
      assert.match(text, /^#Log-type: SMTP Send Protocol Log$/m);
      assert.match(text, /^[^#].*,To Internet,[0-9A-F]{16},\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,>,EHLO mail\.contoso\.test,/m);
      assert.match(text, /,>,MAIL FROM:<sender@contoso\.test>/);
    } finally {
      await rm(logDir, { recursive: true, force: true });
    }
  });
});
