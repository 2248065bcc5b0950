import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addressLiteral, orderAddresses, orderMxHosts, planMx } from '../../../src/delivery/smtp/mx.js';
import { parseSmartHost, parseSmartHosts } from '../../../src/delivery/smtp/smart-host.js';

/** A random source replaying a fixed sequence. */
function seq(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('MX planning', () => {
  const mx = (exchange: string, preference: number) => ({ exchange, preference });

  test('ascending preference, duplicates and trailing dots removed', () => {
    const hosts = orderMxHosts([mx('b.example.', 20), mx('A.example', 10), mx('a.example', 30)], seq(0));
    assert.deepEqual(hosts, [{ name: 'a.example', preference: 10 }, { name: 'b.example', preference: 20 }]);
  });

  test('equal preferences are ordered by the random source', () => {
    const records = [mx('x.example', 10), mx('y.example', 10), mx('z.example', 5)];
    const first = orderMxHosts(records, seq(0.99)).map((h) => h.name);
    const second = orderMxHosts(records, seq(0)).map((h) => h.name);
    assert.equal(first[0], 'z.example');
    assert.equal(second[0], 'z.example');
    assert.deepEqual(new Set(first.slice(1)), new Set(['x.example', 'y.example']));
    assert.notDeepEqual(first, second);
  });

  test('no MX (NODATA) → implicit MX on the domain', () => {
    const plan = planMx('Example.ORG', { ok: false, kind: 'nodata', code: 'ENODATA', detail: '' }, Math.random);
    assert.deepEqual(plan, { kind: 'hosts', hosts: [{ name: 'example.org', preference: 0 }], implicit: true });
  });

  test('null MX → permanent failure', () => {
    const plan = planMx('nomail.example', { ok: true, records: [mx('', 0)] }, Math.random);
    assert.equal(plan.kind, 'error');
    assert.equal(plan.kind === 'error' && plan.failure.result, 'nullmx');
  });

  test('a null MX next to real MX records is ignored', () => {
    const plan = planMx('mixed.example', { ok: true, records: [mx('.', 0), mx('mx.mixed.example', 10)] }, Math.random);
    assert.deepEqual(plan, { kind: 'hosts', hosts: [{ name: 'mx.mixed.example', preference: 10 }], implicit: false });
  });

  test('NXDOMAIN is permanent, SERVFAIL temporary', () => {
    const nx = planMx('gone.example', { ok: false, kind: 'nxdomain', code: 'ENOTFOUND', detail: '' }, Math.random);
    assert.equal(nx.kind === 'error' && nx.failure.result, 'nxdomain');
    const sf = planMx('flaky.example', { ok: false, kind: 'temporary', code: 'ESERVFAIL', detail: '' }, Math.random);
    assert.equal(sf.kind === 'error' && sf.failure.result, 'temporary');
  });

  test('address literals skip DNS', () => {
    assert.deepEqual(planMx('[192.0.2.1]', undefined, Math.random), { kind: 'literal', ip: '192.0.2.1' });
    assert.deepEqual(planMx('[IPv6:2001:db8::1]', undefined, Math.random), { kind: 'literal', ip: '2001:db8::1' });
    assert.deepEqual(planMx('192.0.2.7', undefined, Math.random), { kind: 'literal', ip: '192.0.2.7' });
    assert.equal(addressLiteral('[not-an-ip]'), undefined);
    assert.equal(addressLiteral('example.com'), undefined);
  });

  test('addresses: IPv4 then IPv6, no duplicates', () => {
    assert.deepEqual(orderAddresses(['192.0.2.1', '192.0.2.2'], ['2001:db8::1', '192.0.2.1']), ['192.0.2.1', '192.0.2.2', '2001:db8::1']);
  });
});

describe('smart host parsing', () => {
  const cases = [
    ['10.1.1.1', { kind: 'ip', ip: '10.1.1.1', port: 25 }],
    ['10.1.1.1:2525', { kind: 'ip', ip: '10.1.1.1', port: 2525 }],
    ['[10.1.1.1]', { kind: 'ip', ip: '10.1.1.1', port: 25 }],
    ['[10.1.1.1]:587', { kind: 'ip', ip: '10.1.1.1', port: 587 }],
    ['[2001:db8::1]:2525', { kind: 'ip', ip: '2001:db8::1', port: 2525 }],
    ['2001:db8::1', { kind: 'ip', ip: '2001:db8::1', port: 25 }],
    ['relay.fabrikam.com', { kind: 'fqdn', name: 'relay.fabrikam.com', port: 25 }],
    ['Relay.Fabrikam.com.:587', { kind: 'fqdn', name: 'relay.fabrikam.com', port: 587 }],
  ] as const;
  for (const [text, expected] of cases) {
    test(text, () => {
      const r = parseSmartHost(text, 25);
      assert.ok(!('error' in r), JSON.stringify(r));
      const { text: _t, ...rest } = r;
      assert.deepEqual(rest, expected);
    });
  }

  test('bad entries are reported, not thrown', () => {
    const r = parseSmartHosts(['relay.example:99999', '[nope]', 'ok.example', 'bad host'], 25);
    assert.equal(r.hosts.length, 1);
    assert.equal(r.errors.length, 3);
  });
});
