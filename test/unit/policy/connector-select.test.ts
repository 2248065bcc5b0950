import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { selectConnector, type SelectableConnector } from '../../../src/policy/connector-select.js';

const c = (name: string, bindings: string[], remoteIPRanges: string[], enabled = true): SelectableConnector => ({ name, enabled, bindings, remoteIPRanges });

// Microsoft's example (reference 2.7): three connectors on one binding.
const example = [
  c('All', ['0.0.0.0:25'], ['0.0.0.0-255.255.255.255']),
  c('Range', ['0.0.0.0:25'], ['192.168.1.0-192.168.1.255']),
  c('Single', ['0.0.0.0:25'], ['192.168.1.75']),
];

describe('selectConnector', () => {
  const cases: Array<{ title: string; connectors: SelectableConnector[]; local: string; port: number; remote: string; expect: string | null }> = [
    { title: 'a single address beats a range that contains it', connectors: example, local: '10.0.0.1', port: 25, remote: '192.168.1.75', expect: 'Single' },
    { title: 'a /24-sized range beats the all-addresses range', connectors: example, local: '10.0.0.1', port: 25, remote: '192.168.1.100', expect: 'Range' },
    { title: 'everyone else gets the all-addresses connector', connectors: example, local: '10.0.0.1', port: 25, remote: '203.0.113.9', expect: 'All' },
    { title: 'a connection to another port finds nothing', connectors: example, local: '10.0.0.1', port: 587, remote: '203.0.113.9', expect: null },
    {
      title: 'CIDR ranges are compared by size too',
      connectors: [c('Wide', ['0.0.0.0:25'], ['10.0.0.0/8']), c('Narrow', ['0.0.0.0:25'], ['10.1.0.0/16'])],
      local: '127.0.0.1', port: 25, remote: '10.1.2.3', expect: 'Narrow',
    },
    {
      title: 'an IPv4-mapped IPv6 client counts as IPv4',
      connectors: example, local: '::ffff:10.0.0.1', port: 25, remote: '::ffff:192.168.1.75', expect: 'Single',
    },
    {
      title: 'an IPv6 wildcard binding does not take IPv4 connections',
      connectors: [c('V6', ['[::]:25'], ['::/0', '0.0.0.0/0'])], local: '10.0.0.1', port: 25, remote: '10.0.0.2', expect: null,
    },
    {
      title: 'an IPv6 client on an IPv6 wildcard binding',
      connectors: [c('V6', ['[::]:25'], ['::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']), c('Doc', ['[::]:25'], ['2001:db8::/32'])],
      local: '::1', port: 25, remote: '2001:db8::5', expect: 'Doc',
    },
    {
      title: 'a specific local address beats a wildcard with an equal range',
      connectors: [c('Wild', ['0.0.0.0:25'], ['0.0.0.0/0']), c('Specific', ['127.0.0.1:25'], ['0.0.0.0/0'])],
      local: '127.0.0.1', port: 25, remote: '127.0.0.1', expect: 'Specific',
    },
    {
      title: 'a specific binding does not match another local address',
      connectors: [c('Specific', ['127.0.0.1:25'], ['0.0.0.0/0'])], local: '127.0.0.2', port: 25, remote: '127.0.0.1', expect: null,
    },
    {
      title: 'a disabled connector is skipped',
      connectors: [c('Off', ['0.0.0.0:25'], ['192.168.1.75'], false), c('All', ['0.0.0.0:25'], ['0.0.0.0/0'])],
      local: '10.0.0.1', port: 25, remote: '192.168.1.75', expect: 'All',
    },
    {
      title: 'a client outside every range is refused',
      connectors: [c('Lan', ['0.0.0.0:25'], ['10.0.0.0/8'])], local: '10.0.0.1', port: 25, remote: '192.0.2.7', expect: null,
    },
    {
      title: 'a tie on everything goes to the first in the file',
      connectors: [c('First', ['0.0.0.0:25'], ['0.0.0.0/0']), c('Second', ['0.0.0.0:25'], ['0.0.0.0/0'])],
      local: '10.0.0.1', port: 25, remote: '10.0.0.2', expect: 'First',
    },
    {
      title: 'port 0 bindings (tests) match the configured port',
      connectors: [c('Test', ['127.0.0.1:0'], ['127.0.0.1'])], local: '127.0.0.1', port: 0, remote: '127.0.0.1', expect: 'Test',
    },
  ];
  for (const t of cases) {
    test(t.title, () => {
      const r = selectConnector(t.connectors, { address: t.local, port: t.port }, t.remote);
      if (t.expect === null) {
        assert.equal(r.kind, 'refused');
      } else {
        assert.equal(r.kind, 'selected', JSON.stringify(r.steps));
        if (r.kind === 'selected') assert.equal(r.connector.name, t.expect);
      }
      assert.ok(r.steps.length > 0 || r.kind === 'refused');
    });
  }

  test('the explanation names each step', () => {
    const r = selectConnector(example, { address: '10.0.0.1', port: 25 }, '192.168.1.100');
    const text = r.steps.join('\n');
    assert.match(text, /candidate "All": binding 0\.0\.0\.0:25 contains 10\.0\.0\.1:25/);
    assert.match(text, /drop "Single": no remote IP range contains 192\.168\.1\.100/);
    assert.match(text, /keep "Range": remote range 192\.168\.1\.0-192\.168\.1\.255 contains 192\.168\.1\.100 \(256 addresses\)/);
    assert.match(text, /selected "Range"/);
  });
});
