import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSmtpDeliveryAgent } from '../../../src/delivery/smtp/agent.js';
import { createNodeResolver } from '../../../src/platform/dns.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { startSinkOnPort, startSmtpSink, type SmtpSink } from '../../helpers/smtp-sink.js';
import { MemoryProtocolLog, SIMPLE, makeConfig, signal, silent, tempSpool, type TempSpool } from './setup.js';

describe('DNS (MX) delivery through the in-process DNS server', () => {
  let dns: TestDnsServer;
  let sinkA: SmtpSink; // 127.0.0.1
  let sinkB: SmtpSink; // 127.0.0.2, same port
  let spool: TempSpool;

  before(async () => {
    sinkA = await startSmtpSink({ rcptReplies: { 'busy@fabrikam.test': '450 4.2.1 Mailbox busy, try later', 'nobody@fabrikam.test': '550 5.1.1 <nobody@fabrikam.test>: Recipient address rejected: User unknown' } });
    sinkB = await startSinkOnPort('127.0.0.2', sinkA.port);
    dns = await startDnsServer({
      'fabrikam.test': { mx: [{ exchange: 'mx1.fabrikam.test', preference: 10 }] },
      'mx1.fabrikam.test': { a: ['127.0.0.1'] },
      // preference order: 127.0.0.2 (pref 5) before 127.0.0.1 (pref 10)
      'pref.test': { mx: [{ exchange: 'far.pref.test', preference: 10 }, { exchange: 'near.pref.test', preference: 5 }] },
      'far.pref.test': { a: ['127.0.0.1'] },
      'near.pref.test': { a: ['127.0.0.2'] },
      // the first MX refuses connections (nothing listens on 127.0.0.3): failover to the second
      'failover.test': { mx: [{ exchange: 'dead.failover.test', preference: 10 }, { exchange: 'live.failover.test', preference: 20 }] },
      'dead.failover.test': { a: ['127.0.0.3'] },
      'live.failover.test': { a: ['127.0.0.1'] },
      // every address of a host before the next host
      'multi.test': { mx: [{ exchange: 'mx.multi.test', preference: 10 }, { exchange: 'other.multi.test', preference: 20 }] },
      'mx.multi.test': { a: ['127.0.0.3', '127.0.0.2'] },
      'other.multi.test': { a: ['127.0.0.1'] },
      // no MX: implicit MX on the A record
      'implicit.test': { a: ['127.0.0.1'] },
      'nomail.test': { mx: [{ exchange: '.', preference: 0 }] },
      'flaky.test': { servfail: true },
      'nohost.test': { mx: [{ exchange: 'gone.nohost.test', preference: 10 }] },
      'down.test': { mx: [{ exchange: 'mx.down.test', preference: 10 }] },
      'mx.down.test': { a: ['127.0.0.3'] },
    });
    spool = await tempSpool();
  });
  after(async () => {
    await Promise.all([sinkA.close(), sinkB.close(), dns.close(), spool.cleanup()]);
  });

  function agent(log = new MemoryProtocolLog(), connector: Record<string, unknown> = {}) {
    const { config, connector: c } = makeConfig({ protocolLoggingLevel: 'Verbose', ...connector }, { dns: { servers: [dns.address], timeout: '2s' } });
    return createSmtpDeliveryAgent({ config, connector: c, resolver: createNodeResolver({ servers: [dns.address], timeoutMs: 1000 }), logger: silent, protocolLog: log, port: sinkA.port });
  }

  test('delivers to the MX host and reports 250 per recipient', async () => {
    const a = agent();
    const before = sinkA.messages.length;
    const batch = await spool.batch({ nextHopDomain: 'fabrikam.test', recipients: ['ann@fabrikam.test', 'bob@fabrikam.test'], body: SIMPLE });
    const r = await a.deliver(batch, signal());
    await a.close?.();
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(r.outcomes.get('bob@fabrikam.test')?.kind, 'delivered');
    assert.equal(r.session?.ip, '127.0.0.1');
    const m = sinkA.messages[before]!;
    assert.equal(m.mailFrom, 'sender@contoso.test');
    assert.deepEqual(m.rcptTo.map((x) => x.address), ['ann@fabrikam.test', 'bob@fabrikam.test']);
    assert.equal(m.data.toString(), SIMPLE);
  });

  test('per-recipient 250 / 450 / 550 are mapped to delivered / deferred / failed', async () => {
    const a = agent();
    const batch = await spool.batch({ nextHopDomain: 'fabrikam.test', recipients: ['ok@fabrikam.test', 'busy@fabrikam.test', 'nobody@fabrikam.test'], body: SIMPLE });
    const r = await a.deliver(batch, signal());
    await a.close?.();
    const ok = r.outcomes.get('ok@fabrikam.test');
    const busy = r.outcomes.get('busy@fabrikam.test');
    const nobody = r.outcomes.get('nobody@fabrikam.test');
    assert.equal(ok?.kind, 'delivered');
    assert.equal(busy?.kind, 'deferred');
    assert.equal(busy?.reply?.code, 450);
    assert.equal(nobody?.kind, 'failed');
    assert.equal(nobody?.kind === 'failed' && nobody.reply.enhanced, '5.1.1');
    assert.match(nobody?.kind === 'failed' ? nobody.reply.text : '', /User unknown/);
    assert.equal(nobody?.kind === 'failed' && nobody.category, 'recipient');
  });

  test('MX preference order: the lower preference host gets the message', async () => {
    const a = agent();
    const beforeB = sinkB.messages.length;
    const r = await a.deliver(await spool.batch({ nextHopDomain: 'pref.test', recipients: ['x@pref.test'], body: SIMPLE }), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('x@pref.test')?.kind, 'delivered');
    assert.equal(r.session?.ip, '127.0.0.2');
    assert.equal(sinkB.messages.length, beforeB + 1);
  });

  test('failover to the second MX when the first refuses connections', async () => {
    const log = new MemoryProtocolLog();
    const a = agent(log);
    const r = await a.deliver(await spool.batch({ nextHopDomain: 'failover.test', recipients: ['x@failover.test'], body: SIMPLE }), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('x@failover.test')?.kind, 'delivered');
    assert.equal(r.session?.host, 'live.failover.test');
    assert.ok(log.events.some((e) => e.event.remoteEndpoint.startsWith('127.0.0.3:')), 'the first MX was tried');
  });

  test('every address of a host is tried before the next host', async () => {
    const a = agent();
    const r = await a.deliver(await spool.batch({ nextHopDomain: 'multi.test', recipients: ['x@multi.test'], body: SIMPLE }), signal());
    await a.close?.();
    assert.equal(r.session?.host, 'mx.multi.test');
    assert.equal(r.session?.ip, '127.0.0.2');
  });

  test('no MX: the A record of the domain is used (implicit MX)', async () => {
    const a = agent();
    const r = await a.deliver(await spool.batch({ nextHopDomain: 'implicit.test', recipients: ['x@implicit.test'], body: SIMPLE }), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('x@implicit.test')?.kind, 'delivered');
    assert.equal(r.session?.host, 'implicit.test');
  });

  test('null MX and NXDOMAIN fail at once; SERVFAIL defers', async () => {
    const a = agent();
    const nullMx = await a.deliver(await spool.batch({ nextHopDomain: 'nomail.test', recipients: ['x@nomail.test'], body: SIMPLE }), signal());
    const o1 = nullMx.outcomes.get('x@nomail.test');
    assert.equal(o1?.kind, 'failed');
    assert.equal(o1?.kind === 'failed' && o1.reply.enhanced, '5.1.10');
    const nx = await a.deliver(await spool.batch({ nextHopDomain: 'nowhere.test', recipients: ['x@nowhere.test'], body: SIMPLE }), signal());
    const o2 = nx.outcomes.get('x@nowhere.test');
    assert.equal(o2?.kind, 'failed');
    assert.equal(o2?.kind === 'failed' && o2.reply.enhanced, '5.1.2');
    const sf = await a.deliver(await spool.batch({ nextHopDomain: 'flaky.test', recipients: ['x@flaky.test'], body: SIMPLE }), signal());
    const o3 = sf.outcomes.get('x@flaky.test');
    assert.equal(o3?.kind, 'deferred');
    assert.equal(o3?.kind === 'deferred' && o3.category, 'dns');
    await a.close?.();
  });

  test('an MX host without addresses fails the domain; unreachable hosts defer with connectionFailure', async () => {
    const a = agent();
    const noHost = await a.deliver(await spool.batch({ nextHopDomain: 'nohost.test', recipients: ['x@nohost.test'], body: SIMPLE }), signal());
    assert.equal(noHost.outcomes.get('x@nohost.test')?.kind, 'failed');
    const down = await a.deliver(await spool.batch({ nextHopDomain: 'down.test', recipients: ['x@down.test'], body: SIMPLE }), signal());
    assert.equal(down.outcomes.get('x@down.test')?.kind, 'deferred');
    assert.equal(down.connectionFailure, true);
    const o = down.outcomes.get('x@down.test');
    assert.equal(o?.kind === 'deferred' && o.category, 'connect');
    await a.close?.();
  });

  test('IPv6: an MX with only an AAAA record (::1) is reached', async (t) => {
    let sink6: SmtpSink | undefined;
    try {
      sink6 = await startSinkOnPort('::1', sinkA.port);
    } catch {
      t.skip('::1 is not usable here (or the port is taken on it)');
      return;
    }
    try {
      dns.set('v6.test', { mx: [{ exchange: 'mx.v6.test', preference: 10 }] });
      dns.set('mx.v6.test', { aaaa: ['::1'] });
      const a = agent();
      const r = await a.deliver(await spool.batch({ nextHopDomain: 'v6.test', recipients: ['x@v6.test'], body: SIMPLE }), signal());
      await a.close?.();
      assert.equal(r.outcomes.get('x@v6.test')?.kind, 'delivered');
      assert.equal(r.session?.ip, '::1');
      assert.equal(sink6.messages.length, 1);
    } finally {
      await sink6.close();
    }
  });

  test('address literal user@[127.0.0.1] goes straight to that address', async () => {
    const a = agent();
    const before = sinkA.messages.length;
    const r = await a.deliver(await spool.batch({ nextHopDomain: '[127.0.0.1]', recipients: ['x@[127.0.0.1]'], body: SIMPLE }), signal());
    await a.close?.();
    assert.equal(r.outcomes.get('x@[127.0.0.1]')?.kind, 'delivered');
    assert.equal(sinkA.messages.length, before + 1);
  });
});
