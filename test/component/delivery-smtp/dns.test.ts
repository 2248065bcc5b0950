import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNodeResolver, type Resolver } from '../../../src/platform/dns.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';

describe('node:dns resolver against the in-process DNS server', () => {
  let dns: TestDnsServer;
  let resolver: Resolver;
  before(async () => {
    dns = await startDnsServer({
      'example.test': { mx: [{ exchange: 'mx1.example.test', preference: 10 }, { exchange: 'mx2.example.test', preference: 20 }] },
      'mx1.example.test': { a: ['127.0.0.1'], aaaa: ['::1'] },
      'nomail.test': { mx: [{ exchange: '.', preference: 0 }] },
      'flaky.test': { servfail: true },
      'silent.test': { timeout: true },
      'bare.test': { a: ['127.0.0.2'] },
    });
    resolver = createNodeResolver({ servers: [dns.address], timeoutMs: 300 });
  });
  after(() => dns.close());

  test('MX records with preferences', async () => {
    const r = await resolver.mx('example.test');
    assert.ok(r.ok);
    assert.deepEqual([...r.records].sort((x, y) => x.preference - y.preference), [
      { exchange: 'mx1.example.test', preference: 10 },
      { exchange: 'mx2.example.test', preference: 20 },
    ]);
  });

  test('A and AAAA', async () => {
    assert.deepEqual(await resolver.a('mx1.example.test'), { ok: true, records: ['127.0.0.1'] });
    assert.deepEqual(await resolver.aaaa('mx1.example.test'), { ok: true, records: ['::1'] });
  });

  test('null MX comes back as an empty exchange', async () => {
    const r = await resolver.mx('nomail.test');
    assert.ok(r.ok);
    assert.equal(r.records.length, 1);
    assert.ok(r.records[0]!.exchange === '' || r.records[0]!.exchange === '.');
    assert.equal(r.records[0]!.preference, 0);
  });

  test('NXDOMAIN, NODATA, SERVFAIL and timeout are told apart', async () => {
    const nx = await resolver.mx('nowhere.test');
    assert.equal(nx.ok, false);
    assert.equal(!nx.ok && nx.kind, 'nxdomain');
    const nodata = await resolver.mx('bare.test');
    assert.equal(!nodata.ok && nodata.kind, 'nodata');
    const sf = await resolver.mx('flaky.test');
    assert.equal(!sf.ok && sf.kind, 'temporary');
    const to = await resolver.a('silent.test');
    assert.equal(!to.ok && to.kind, 'temporary');
  });
});
