import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../../src/config/schema.js';
import { applyDefaults, type Config } from '../../../src/config/defaults.js';
import { resolveRecipient, MAILBOX_KEY } from '../../../src/routing/resolve.js';
import { splitByNextHop } from '../../../src/routing/split.js';
import { routeCommand } from '../../../src/cli/route.js';

function cfg(input: Record<string, unknown>): Config {
  return applyDefaults(configSchema.parse({ server: { name: 'EX01', fqdn: 'ex01.contoso.com', site: 'HQ' }, ...input }), '<inline>', []);
}

const MB = 1024 * 1024;

interface Row {
  name: string;
  config: Record<string, unknown>;
  recipient: string;
  size?: number;
  localServer?: string;
  expect: string | { unroutable: string; action: 'queue' | 'ndr' };
  nextHop?: string;
  deliveryType?: string;
}

const internet = { name: 'To Internet', addressSpaces: ['SMTP:*;1'] };
const listener25 = { name: 'Default Frontend EX01', bindings: ['0.0.0.0:25'], usage: 'Internet' };
const contosoWild = { name: 'Contoso wildcard', addressSpaces: ['*.contoso.com'], smartHosts: ['10.0.0.5'] };

const rows: Row[] = [
  {
    name: 'julia@marketing.contoso.com goes through *.contoso.com when such a connector exists',
    config: { sendConnectors: [internet, contosoWild] },
    recipient: 'julia@marketing.contoso.com',
    expect: 'Contoso wildcard',
    nextHop: '[10.0.0.5]',
    deliveryType: 'SmartHostConnectorDelivery',
  },
  {
    name: 'julia@marketing.contoso.com goes through * when there is no *.contoso.com connector',
    config: { sendConnectors: [internet] },
    recipient: 'julia@marketing.contoso.com',
    expect: 'To Internet',
    nextHop: 'marketing.contoso.com',
    deliveryType: 'DnsConnectorDelivery',
  },
  {
    name: 'an exact domain beats *.suffix',
    config: { sendConnectors: [internet, contosoWild, { name: 'Marketing', addressSpaces: ['marketing.contoso.com'] }] },
    recipient: 'julia@marketing.contoso.com',
    expect: 'Marketing',
  },
  {
    name: '*.contoso.com also matches contoso.com itself',
    config: { sendConnectors: [internet, contosoWild] },
    recipient: 'bob@contoso.com',
    expect: 'Contoso wildcard',
  },
  {
    name: 'a longer *.suffix beats a shorter one',
    config: { sendConnectors: [contosoWild, { name: 'Deep', addressSpaces: ['*.marketing.contoso.com'] }] },
    recipient: 'a@eu.marketing.contoso.com',
    expect: 'Deep',
  },
  {
    name: 'an exact space does not match subdomains',
    config: { sendConnectors: [internet, { name: 'Exact', addressSpaces: ['contoso.com'] }] },
    recipient: 'a@sales.contoso.com',
    expect: 'To Internet',
  },
  {
    name: 'equal address spaces: the lower cost wins',
    config: { sendConnectors: [{ name: 'A expensive', addressSpaces: ['SMTP:fabrikam.com;5'] }, { name: 'B cheap', addressSpaces: ['SMTP:fabrikam.com;2'] }] },
    recipient: 'x@fabrikam.com',
    expect: 'B cheap',
  },
  {
    name: 'equal space and cost: the name decides',
    config: { sendConnectors: [{ name: 'Zulu', addressSpaces: ['fabrikam.com'] }, { name: 'alpha', addressSpaces: ['fabrikam.com'] }] },
    recipient: 'x@fabrikam.com',
    expect: 'alpha',
  },
  {
    name: 'specificity beats cost',
    config: { sendConnectors: [{ name: 'Cheap star', addressSpaces: ['SMTP:*;1'] }, { name: 'Exact dear', addressSpaces: ['SMTP:fabrikam.com;100'] }] },
    recipient: 'x@fabrikam.com',
    expect: 'Exact dear',
  },
  {
    name: 'a connector too small for the message is dropped and the next one wins',
    config: { sendConnectors: [internet, { name: 'Small', addressSpaces: ['fabrikam.com'], maxMessageSize: '1MB' }] },
    recipient: 'x@fabrikam.com',
    size: 2 * MB,
    expect: 'To Internet',
  },
  {
    name: 'too large for every matching connector: NDR 5.3.4',
    config: { sendConnectors: [{ name: 'Small', addressSpaces: ['*'], maxMessageSize: '1MB' }] },
    recipient: 'x@fabrikam.com',
    size: 2 * MB,
    expect: { unroutable: '5.3.4', action: 'ndr' },
  },
  {
    name: 'a disabled connector is skipped',
    config: { sendConnectors: [internet, { name: 'Off', enabled: false, addressSpaces: ['fabrikam.com'] }] },
    recipient: 'x@fabrikam.com',
    expect: 'To Internet',
  },
  {
    name: 'no matching connector: Unreachable queue, 5.4.4',
    config: { sendConnectors: [{ name: 'Only fabrikam', addressSpaces: ['fabrikam.com'] }] },
    recipient: 'x@example.org',
    expect: { unroutable: '5.4.4', action: 'queue' },
  },
  {
    name: 'no matching connector with unreachableAction ndr: bounced at once',
    config: { transportService: { unreachableAction: 'ndr' } },
    recipient: 'x@example.org',
    expect: { unroutable: '5.4.4', action: 'ndr' },
  },
  {
    name: 'a scoped connector of another site is invisible',
    config: {
      organization: { servers: [{ name: 'EX01', fqdn: 'ex01.contoso.com', site: 'HQ' }, { name: 'EX02', fqdn: 'ex02.contoso.com', site: 'Branch' }] },
      sendConnectors: [internet, { name: 'Branch only', addressSpaces: ['fabrikam.com'], isScopedConnector: true, sourceTransportServers: ['EX02'] }],
    },
    recipient: 'x@fabrikam.com',
    expect: 'To Internet',
  },
  {
    name: 'a scoped connector of the local site is used',
    config: {
      organization: { servers: [{ name: 'EX01', fqdn: 'ex01.contoso.com', site: 'HQ' }, { name: 'EX03', fqdn: 'ex03.contoso.com', site: 'HQ' }] },
      sendConnectors: [internet, { name: 'HQ only', addressSpaces: ['fabrikam.com'], isScopedConnector: true, sourceTransportServers: ['EX03'] }],
    },
    recipient: 'x@fabrikam.com',
    expect: 'HQ only',
  },
  {
    name: 'equal space and cost: the local source server beats a peer',
    config: {
      organization: { servers: [{ name: 'EX01', fqdn: 'ex01.contoso.com', site: 'HQ' }, { name: 'EX03', fqdn: 'ex03.contoso.com', site: 'HQ' }] },
      sendConnectors: [{ name: 'A via peer', addressSpaces: ['fabrikam.com'], sourceTransportServers: ['EX03'] }, { name: 'B local', addressSpaces: ['fabrikam.com'] }],
    },
    recipient: 'x@fabrikam.com',
    expect: 'B local',
  },
  {
    name: 'site-link cost is added to the address-space cost',
    config: {
      organization: {
        servers: [{ name: 'EX01', fqdn: 'ex01.contoso.com', site: 'HQ' }, { name: 'EX02', fqdn: 'ex02.contoso.com', site: 'Branch' }],
        siteLinks: [{ sites: ['HQ', 'Branch'], cost: 10 }],
      },
      sendConnectors: [{ name: 'A remote', addressSpaces: ['SMTP:fabrikam.com;1'], sourceTransportServers: ['EX02'] }, { name: 'B local', addressSpaces: ['SMTP:fabrikam.com;5'] }],
    },
    recipient: 'x@fabrikam.com',
    expect: 'B local',
  },
  {
    name: 'Authoritative accepted domain: mailbox delivery',
    config: { acceptedDomains: [{ domainName: 'contoso.com', domainType: 'Authoritative' }], sendConnectors: [internet] },
    recipient: 'Bob@Contoso.com',
    expect: 'mailbox',
    nextHop: 'mailbox',
    deliveryType: 'SmtpDeliveryToMailbox',
  },
  {
    name: 'InternalRelay accepted domain: routed onward by connectors',
    config: { acceptedDomains: [{ domainName: 'contoso.com' }, { domainName: '*.contoso.com', domainType: 'InternalRelay' }], sendConnectors: [internet, contosoWild] },
    recipient: 'julia@marketing.contoso.com',
    expect: 'Contoso wildcard',
  },
  {
    name: 'a Delivery Agent connector with an exact space wins over the internet connector',
    config: {
      sendConnectors: [internet],
      deliveryAgentConnectors: [{ name: 'Ticketing webhook', addressSpaces: ['SMTP:tickets.contoso.com;1'], deliveryProtocol: 'http', url: 'http://127.0.0.1:9/' }],
    },
    recipient: 'help@tickets.contoso.com',
    expect: 'Ticketing webhook',
    nextHop: 'tickets.contoso.com',
    deliveryType: 'DeliveryAgent',
  },
  {
    name: 'a non-SMTP address goes to the Foreign connector carrying that type',
    config: { sendConnectors: [internet], foreignConnectors: [{ name: 'Fax gateway', addressSpaces: ['FAX:*;1'], dropDirectory: '/tmp/x' }] },
    recipient: 'FAX:+15551234',
    expect: 'Fax gateway',
    deliveryType: 'NonSmtpGatewayDelivery',
  },
  {
    name: 'a non-SMTP address with no connector for its type is bounced at once',
    config: { sendConnectors: [internet] },
    recipient: 'X400:c=US;a=x;p=y',
    expect: { unroutable: '5.4.4', action: 'ndr' },
  },
  {
    name: 'a non-SMTP space on a DNS-routed Send connector is not usable',
    config: { sendConnectors: [{ name: 'Fax over DNS', addressSpaces: ['FAX:*;1'] }] },
    recipient: 'FAX:123',
    expect: { unroutable: '5.4.4', action: 'ndr' },
  },
  {
    name: 'a smart host that is this server itself is dropped; with no other route it is bounced as a loop',
    config: { receiveConnectors: [listener25], sendConnectors: [{ name: 'Self', addressSpaces: ['*'], smartHosts: ['ex01.contoso.com'] }] },
    recipient: 'x@fabrikam.com',
    expect: { unroutable: '5.4.6', action: 'ndr' },
  },
  {
    name: 'a self-pointing smart host is skipped in favour of another connector',
    config: { receiveConnectors: [listener25], sendConnectors: [internet, { name: 'Self', addressSpaces: ['fabrikam.com'], smartHosts: ['[127.0.0.1]'] }] },
    recipient: 'x@fabrikam.com',
    expect: 'To Internet',
  },
  {
    name: 'a loopback smart host on a port we do not listen on is another program, not a loop',
    config: { receiveConnectors: [listener25], sendConnectors: [{ name: 'Local sink', addressSpaces: ['*'], smartHosts: ['127.0.0.1:2526'] }] },
    recipient: 'x@fabrikam.com',
    expect: 'Local sink',
    nextHop: '[127.0.0.1]:2526',
  },
];

describe('resolveRecipient', () => {
  for (const r of rows) {
    test(r.name, () => {
      const d = resolveRecipient(cfg(r.config), r.recipient, { size: r.size ?? 1000, ...(r.localServer ? { localServer: r.localServer } : {}) });
      if (typeof r.expect === 'string') {
        assert.equal(d.kind, 'routed', JSON.stringify(d));
        if (d.kind !== 'routed') return;
        assert.equal(d.key.connector ?? 'mailbox', r.expect);
        if (r.nextHop) assert.equal(d.key.nextHopDomain, r.nextHop);
        if (r.deliveryType) assert.equal(d.key.deliveryType, r.deliveryType);
        assert.equal(d.candidates.filter((c) => c.kept).length, 1);
        for (const c of d.candidates) assert.ok(c.reason.length > 0, `candidate ${c.connector} has a reason`);
      } else {
        assert.equal(d.kind, 'unroutable', JSON.stringify(d));
        if (d.kind !== 'unroutable') return;
        assert.equal(d.enhanced, r.expect.unroutable);
        assert.equal(d.action, r.expect.action);
        assert.ok(d.candidates.every((c) => !c.kept));
      }
    });
  }

  test('dropped candidates say why', () => {
    const d = resolveRecipient(cfg({ sendConnectors: [internet, contosoWild, { name: 'Small', addressSpaces: ['*.contoso.com'], maxMessageSize: '1KB' }] }), 'julia@marketing.contoso.com', { size: 5000 });
    const byName = new Map(d.candidates.map((c) => [c.connector, c]));
    assert.match(byName.get('To Internet')!.reason, /less specific/);
    assert.match(byName.get('Small')!.reason, /maxMessageSize/);
    assert.equal(byName.get('Contoso wildcard')!.kept, true);
  });

  test('a decision kept for a domain is the one a fresh resolution gives, whatever the size and sender', () => {
    // fabrikam.com: Small (1 MB, cheaper) first, then Big (10 MB); nothing carries more than 10 MB.
    const connectors = () => [{ name: 'Small', addressSpaces: ['fabrikam.com;1'], maxMessageSize: '1MB' }, { name: 'Big', addressSpaces: ['fabrikam.com;5'], maxMessageSize: '10MB' }];
    const config = cfg({ sendConnectors: connectors() });
    const route = (rcpt: string, size: number) => {
      const d = resolveRecipient(config, rcpt, { size });
      return d.kind === 'routed' ? `${d.key.connector} ${d.candidates.map((c) => c.reason).join('|')}` : `${d.enhanced} ${d.reason}`;
    };
    // Sizes on both sides of each limit, in an order that walks back and forth across them.
    const sizes = [100, MB, MB + 1, 5 * MB, 10 * MB, 10 * MB + 1, 200, 10 * MB + 5, MB + 7, 3];
    const seen = sizes.map((size) => route('a@fabrikam.com', size));
    const fresh = sizes.map((size) => {
      const d = resolveRecipient(cfg({ sendConnectors: connectors() }), 'b@FABRIKAM.com', { size });
      return d.kind === 'routed' ? `${d.key.connector} ${d.candidates.map((c) => c.reason).join('|')}` : `${d.enhanced} ${d.reason}`;
    });
    assert.deepEqual(seen, fresh);
    assert.match(seen[0]!, /^Small /);
    assert.match(seen[1]!, /^Small /);
    assert.match(seen[2]!, /^Big .*message size 1048577 exceeds/);
    assert.match(seen[5]!, /^5\.3\.4 .*\(10485761 bytes\)/);
    assert.match(seen[7]!, /\(10485765 bytes\)/);
    assert.match(seen[8]!, /^Big .*message size 1048583 exceeds/);
    assert.match(seen[9]!, /^Small /);
  });

  test('the local server name is part of what a kept decision depends on', () => {
    const config = cfg({
      organization: { servers: [{ name: 'EX01', fqdn: 'ex01.contoso.com', site: 'HQ' }, { name: 'EX02', fqdn: 'ex02.contoso.com', site: 'Branch' }] },
      sendConnectors: [{ name: 'HQ only', addressSpaces: ['*'], isScopedConnector: true, sourceTransportServers: ['EX01'] }],
    });
    assert.equal(resolveRecipient(config, 'a@example.org', { size: 1 }).kind, 'routed');
    assert.equal(resolveRecipient(config, 'a@example.org', { size: 1, localServer: 'EX02' }).kind, 'unroutable');
    assert.equal(resolveRecipient(config, 'a@example.org', { size: 1 }).kind, 'routed');
  });
});

describe('splitByNextHop', () => {
  test('one message with recipients for two next hops gives two groups, each with only its recipients', () => {
    const c = cfg({ acceptedDomains: [{ domainName: 'contoso.com' }], sendConnectors: [internet] });
    const rcpts = ['a@contoso.com', 'b@fabrikam.com', 'c@contoso.com', 'd@fabrikam.com', 'e@tailspin.example'];
    const s = splitByNextHop(rcpts, rcpts.map((r) => resolveRecipient(c, r, { size: 1 })));
    assert.equal(s.groups.length, 3);
    assert.deepEqual(s.groups[0]!.key, MAILBOX_KEY);
    assert.deepEqual(s.groups[0]!.recipients, ['a@contoso.com', 'c@contoso.com']);
    assert.deepEqual(s.groups[1]!.recipients, ['b@fabrikam.com', 'd@fabrikam.com']);
    assert.deepEqual(s.groups[2]!.recipients, ['e@tailspin.example']);
    assert.equal(s.unroutable.length, 0);
  });
});

describe('route command', () => {
  test('--json prints the contract shape', () => {
    const c = cfg({ sendConnectors: [internet, contosoWild] });
    const out = JSON.parse(routeCommand(c, ['julia@marketing.contoso.com', 'FAX:1'], { size: 10, json: true })) as Record<string, unknown>[];
    assert.equal(out.length, 2);
    const [a, b] = out as [Record<string, any>, Record<string, any>];
    assert.equal(a.recipient, 'julia@marketing.contoso.com');
    assert.equal(a.connector, 'Contoso wildcard');
    assert.equal(a.connectorType, 'send');
    assert.equal(a.addressSpace, 'SMTP:*.contoso.com;1');
    assert.equal(a.cost, 1);
    assert.equal(a.nextHop, '[10.0.0.5]');
    assert.deepEqual(Object.keys(a.candidates[0]).sort(), ['addressSpace', 'connector', 'connectorType', 'cost', 'kept', 'reason']);
    assert.equal(b.connector, null);
  });
  test('the table names the choice and each candidate', () => {
    const c = cfg({ sendConnectors: [internet, contosoWild] });
    const out = routeCommand(c, ['julia@marketing.contoso.com'], { size: 10 });
    assert.match(out, /route: +Contoso wildcard/);
    assert.match(out, /To Internet .*less specific/);
  });
});
