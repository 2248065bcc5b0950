import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyDefaults } from '../../../src/config/defaults.js';
import { configSchema } from '../../../src/config/schema.js';
import {
  configuredEndpoints,
  isSelfAddress,
  isSelfHost,
  pruneSelfMx,
  pruneSelfSmartHosts,
  selfIdentity,
  selfNames,
  type SelfEndpoint,
} from '../../../src/policy/self-loop.js';

const LAN = '192.0.2.10';
const LAN6 = '2001:db8::10';

function me(endpoints: SelfEndpoint[], names: string[] = ['mail.contoso.test'], interfaces: string[] = ['127.0.0.1', LAN, '::1', LAN6]) {
  return selfIdentity({ names, endpoints, interfaceAddresses: interfaces });
}

describe('isSelfAddress', () => {
  const cases: { name: string; endpoints: SelfEndpoint[]; ip: string; port: number; self: boolean }[] = [
    { name: 'exact binding, same port', endpoints: [{ address: '127.0.0.1', port: 2525 }], ip: '127.0.0.1', port: 2525, self: true },
    { name: 'exact binding, other port', endpoints: [{ address: '127.0.0.1', port: 2525 }], ip: '127.0.0.1', port: 25, self: false },
    { name: 'exact binding, other loopback address', endpoints: [{ address: '127.0.0.1', port: 25 }], ip: '127.0.0.2', port: 25, self: false },
    { name: '0.0.0.0 covers a local interface address', endpoints: [{ address: '0.0.0.0', port: 25 }], ip: LAN, port: 25, self: true },
    { name: '0.0.0.0 covers all of 127/8', endpoints: [{ address: '0.0.0.0', port: 25 }], ip: '127.0.0.53', port: 25, self: true },
    { name: '0.0.0.0 does not cover a remote address', endpoints: [{ address: '0.0.0.0', port: 25 }], ip: '198.51.100.7', port: 25, self: false },
    { name: '0.0.0.0 does not cover IPv6', endpoints: [{ address: '0.0.0.0', port: 25 }], ip: LAN6, port: 25, self: false },
    { name: ':: covers a local IPv6 address', endpoints: [{ address: '::', port: 25 }], ip: LAN6, port: 25, self: true },
    { name: ':: covers IPv4 too (dual stack)', endpoints: [{ address: '::', port: 25 }], ip: LAN, port: 25, self: true },
    { name: ':: covers ::1', endpoints: [{ address: '::', port: 25 }], ip: '::1', port: 25, self: true },
    { name: 'IPv4-mapped IPv6 is the IPv4 address', endpoints: [{ address: '127.0.0.1', port: 25 }], ip: '::ffff:127.0.0.1', port: 25, self: true },
    { name: 'unspecified target reaches loopback', endpoints: [{ address: '127.0.0.1', port: 25 }], ip: '0.0.0.0', port: 25, self: true },
    { name: 'not an address', endpoints: [{ address: '0.0.0.0', port: 25 }], ip: 'mail.contoso.test', port: 25, self: false },
  ];
  for (const c of cases) {
    test(c.name, () => assert.equal(isSelfAddress(me(c.endpoints), c.ip, c.port), c.self));
  }
});

describe('isSelfHost', () => {
  const self = me([{ address: '0.0.0.0', port: 25 }]);
  test('a host named like our FQDN is us (case and trailing dot ignored), whatever its addresses', () => {
    assert.equal(isSelfHost(self, { name: 'MAIL.contoso.test.', port: 25, ips: ['198.51.100.7'] }), true);
  });
  test('for MX hosts the name counts on any port; for smart hosts only on a port we listen on', () => {
    assert.equal(isSelfHost(self, { name: 'mail.contoso.test', port: 10025 }), true);
    assert.equal(isSelfHost(self, { name: 'mail.contoso.test', port: 10025 }, { nameNeedsListener: true }), false);
    assert.equal(isSelfHost(self, { name: 'mail.contoso.test', port: 25 }, { nameNeedsListener: true }), true);
  });
  test('any one address of ours makes the host us; unknown addresses do not', () => {
    assert.equal(isSelfHost(self, { name: 'mx.fabrikam.test', port: 25, ips: ['198.51.100.7', LAN] }), true);
    assert.equal(isSelfHost(self, { name: 'mx.fabrikam.test', port: 25 }), false);
  });
});

describe('pruneSelfMx (RFC 5321 5.1)', () => {
  const self = me([{ address: '0.0.0.0', port: 25 }]);
  const OTHER_A = '198.51.100.1';
  const OTHER_B = '198.51.100.2';
  const OTHER_C = '198.51.100.3';
  const h = (name: string, preference: number, ...ips: string[]) => ({ name, preference, port: 25, ips });
  const cases: { name: string; hosts: ReturnType<typeof h>[]; expect: string[] | { loop: string } }[] = [
    { name: 'not among the hosts: all kept in order', hosts: [h('a', 10, OTHER_A), h('b', 20, OTHER_B)], expect: ['a', 'b'] },
    { name: 'we are the only MX: loop', hosts: [h('us', 10, LAN)], expect: { loop: 'us' } },
    { name: 'we are the most preferred MX: loop', hosts: [h('us', 10, '127.0.0.1'), h('backup', 20, OTHER_A)], expect: { loop: 'us' } },
    { name: 'we are at 20, others at 10 and 30: only the 10s remain', hosts: [h('a', 10, OTHER_A), h('a2', 10, OTHER_C), h('us', 20, LAN), h('c', 30, OTHER_B)], expect: ['a', 'a2'] },
    { name: 'a host of equal preference to ours is dropped', hosts: [h('a', 10, OTHER_A), h('us', 20, LAN), h('peer', 20, OTHER_B)], expect: ['a'] },
    { name: 'equal preference to ours at the top: loop', hosts: [h('peer', 10, OTHER_B), h('us', 10, LAN)], expect: { loop: 'us' } },
    { name: 'our lowest preference counts when we appear twice', hosts: [h('a', 5, OTHER_A), h('us1', 10, LAN), h('b', 15, OTHER_B), h('us2', 30, '127.0.0.1')], expect: ['a'] },
    { name: 'found by FQDN without addresses', hosts: [h('a', 10, OTHER_A), h('mail.contoso.test', 20)], expect: ['a'] },
    { name: 'implicit MX (the domain itself, preference 0) on our address: loop', hosts: [h('fabrikam.test', 0, LAN)], expect: { loop: 'fabrikam.test' } },
    { name: 'address literal that is us: loop', hosts: [h('127.0.0.1', 0, '127.0.0.1')], expect: { loop: '127.0.0.1' } },
    { name: 'our address on another port is not us', hosts: [{ name: 'x', preference: 10, port: 2525, ips: [LAN] }], expect: ['x'] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = pruneSelfMx(c.hosts, self);
      if (Array.isArray(c.expect)) {
        assert.equal(d.kind, 'hosts');
        assert.deepEqual(d.kind === 'hosts' && d.hosts.map((x) => x.name), c.expect);
      } else {
        assert.equal(d.kind, 'loop');
        assert.equal(d.kind === 'loop' && d.self.name, c.expect.loop);
      }
    });
  }
  test('the dropped hosts are reported', () => {
    const d = pruneSelfMx([h('a', 10, OTHER_A), h('us', 20, LAN), h('c', 30, OTHER_B)], self);
    assert.equal(d.kind === 'hosts' && d.self?.name, 'us');
    assert.deepEqual(d.kind === 'hosts' && d.discarded.map((x) => x.name), ['us', 'c']);
  });
});

describe('pruneSelfSmartHosts', () => {
  const self = me([{ address: '127.0.0.1', port: 2525 }]);
  const s = (name: string, port: number, ...ips: string[]) => ({ name, port, ips });
  test('a smart host that is us is skipped, the others kept', () => {
    const d = pruneSelfSmartHosts([s('relay.test', 2525, '127.0.0.1'), s('other.test', 25, '198.51.100.1')], self);
    assert.deepEqual(d.kind === 'hosts' && d.hosts.map((x) => x.name), ['other.test']);
  });
  test('every smart host is us: loop', () => {
    const d = pruneSelfSmartHosts([s('relay.test', 2525, '127.0.0.1')], self);
    assert.equal(d.kind, 'loop');
  });
  test('a local program on another port (content filter) is not us', () => {
    const d = pruneSelfSmartHosts([s('127.0.0.1', 10025, '127.0.0.1'), s('mail.contoso.test', 10026)], self);
    assert.equal(d.kind === 'hosts' && d.hosts.length, 2);
  });
});

describe('identity from the config', () => {
  const config = applyDefaults(
    configSchema.parse({
      server: { name: 'EX01', fqdn: 'Mail.Contoso.test', dataDir: '/tmp/unused', logDir: '/tmp/unused' },
      receiveConnectors: [
        { name: 'Inbound', bindings: ['0.0.0.0:25', '[::1]:2525'], fqdn: 'mx.contoso.test' },
        { name: 'Off', enabled: false, bindings: ['192.0.2.9:26'] },
        { name: 'Ephemeral', bindings: ['127.0.0.1:0'] },
      ],
    }),
    '<inline>',
  );
  test('names: server.fqdn and each Receive connector fqdn', () => {
    assert.deepEqual(new Set(selfNames(config).map((n) => n.toLowerCase())), new Set(['mail.contoso.test', 'mx.contoso.test']));
  });
  test('endpoints: enabled connectors only, port 0 left out', () => {
    assert.deepEqual(configuredEndpoints(config), [
      { address: '0.0.0.0', port: 25 },
      { address: '::1', port: 2525 },
    ]);
  });
});
