import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatIssue, loadConfigFile, parseConfigText, type Config } from '../../../src/config/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const MB = 1024 * 1024;

function load(text: string): Config {
  const r = parseConfigText(text, 'test.yaml');
  if (!r.ok) assert.fail(r.issues.map(formatIssue).join('\n'));
  return r.config;
}

describe('valid configurations load', () => {
  for (const file of ['config/dev.yaml', 'config/mailyard.yaml', 'test/fixtures/configs/valid/small.yaml', 'test/fixtures/configs/valid/everything.yaml', 'test/fixtures/configs/valid/defaults-only.yaml']) {
    test(file, () => {
      const r = parseConfigText(readFileSync(root + file, 'utf8'), file);
      assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
    });
  }

  test('the embedded dev config listens on loopback only, on unprivileged ports, and without warnings', () => {
    const r = parseConfigText(readFileSync(`${root}config/dev.yaml`, 'utf8'), 'dev.yaml');
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.deepEqual(r.warnings, []);
    const bindings = r.config.receiveConnectors.flatMap((c) => c.bindings);
    assert.ok(bindings.length > 0);
    for (const b of bindings) {
      assert.match(b, /^(127\.0\.0\.1|\[::1\]):(\d+)$/);
      assert.ok(Number(/:(\d+)$/.exec(b)![1]) >= 1024, b);
    }
    assert.equal(r.config.server.admin.listen, '127.0.0.1:8025');
    assert.equal(r.config.server.dataDir, './var/spool');
    assert.equal(r.config.server.logDir, './var/log');
    assert.deepEqual(r.config.acceptedDomains.map((d) => [d.domainName, d.domainType, d.default]), [['example.test', 'Authoritative', true]]);
  });

  test('the production example has the five Exchange ports and a certificate', () => {
    const r = parseConfigText(readFileSync(`${root}config/mailyard.yaml`, 'utf8'), 'mailyard.yaml');
    assert.ok(r.ok);
    if (!r.ok) return;
    const ports = new Set(r.config.receiveConnectors.flatMap((c) => c.bindings.map((b) => Number(/:(\d+)$/.exec(b)![1]))));
    assert.deepEqual([...ports].sort((a, b) => a - b), [25, 465, 587, 717, 2525]);
    assert.equal(r.config.tls.certFile, '/etc/mailyard/tls/cert.pem');
    assert.deepEqual(r.warnings, []);
  });

  test('an empty file is a valid configuration made of defaults', () => {
    const c = load('');
    assert.equal(c.server.name, 'MAILYARD');
    assert.equal(c.receiveConnectors.length, 5);
  });
});

describe('defaults', () => {
  test('without receiveConnectors, the five Exchange default connectors are created for server.name', () => {
    const c = load('server: { name: EX01, fqdn: mail.contoso.com }\n');
    const summary = c.receiveConnectors.map((r) => ({
      name: r.name,
      role: r.transportRole,
      bindings: r.bindings,
      groups: r.permissionGroups,
      auth: r.authMechanism,
    }));
    assert.deepEqual(summary, [
      {
        name: 'Default Frontend EX01',
        role: 'FrontendTransport',
        bindings: ['0.0.0.0:25', '[::]:25'],
        groups: ['AnonymousUsers', 'ExchangeLegacyServers', 'ExchangeServers'],
        auth: ['Tls', 'BasicAuth', 'BasicAuthRequireTLS', 'ExchangeServer', 'Integrated'],
      },
      { name: 'Client Frontend EX01', role: 'FrontendTransport', bindings: ['0.0.0.0:587', '[::]:587'], groups: ['ExchangeUsers'], auth: ['Tls', 'BasicAuth', 'BasicAuthRequireTLS', 'Integrated'] },
      {
        name: 'Outbound Proxy Frontend EX01',
        role: 'FrontendTransport',
        bindings: ['127.0.0.1:717', '[::1]:717'],
        groups: ['ExchangeServers'],
        auth: ['Tls', 'BasicAuth', 'BasicAuthRequireTLS', 'ExchangeServer', 'Integrated'],
      },
      {
        name: 'Default EX01',
        role: 'HubTransport',
        bindings: ['127.0.0.1:2525', '[::1]:2525'],
        groups: ['ExchangeLegacyServers', 'ExchangeServers', 'ExchangeUsers'],
        auth: ['Tls', 'BasicAuth', 'ExchangeServer', 'Integrated'],
      },
      {
        name: 'Client Proxy EX01',
        role: 'HubTransport',
        bindings: ['127.0.0.1:465', '[::1]:465'],
        groups: ['ExchangeServers', 'ExchangeUsers'],
        auth: ['Tls', 'BasicAuth', 'BasicAuthRequireTLS', 'ExchangeServer', 'Integrated'],
      },
    ]);
    const [front, client, , hub] = c.receiveConnectors;
    assert.equal(front!.protocolLoggingLevel, 'Verbose');
    assert.equal(client!.protocolLoggingLevel, 'None');
    assert.equal(front!.maxMessageSize, 36 * MB);
    assert.equal(front!.maxRecipientsPerMessage, 200);
    assert.equal(front!.connectionTimeout, 10 * 60_000);
    assert.equal(front!.connectionInactivityTimeout, 5 * 60_000);
    assert.equal(front!.maxHopCount, 30);
    assert.equal(front!.fqdn, 'mail.contoso.com');
    assert.deepEqual(front!.remoteIPRanges, ['0.0.0.0-255.255.255.255', '::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']);
    assert.equal(client!.messageRateLimit, 5);
    assert.equal(client!.messageRateSource, 'User');
    assert.equal(hub!.maxRecipientsPerMessage, 5000);
    assert.equal(hub!.maxInboundConnectionPerSource, Number.POSITIVE_INFINITY);
    assert.equal(hub!.maxInboundConnectionPercentagePerSource, 100);
  });

  test('with other servers in the organization, the hub and proxy defaults listen on every address', () => {
    const c = load('server: { name: EX01 }\norganization: { servers: [{ name: EX02, fqdn: ex02.contoso.com }] }\n');
    assert.deepEqual(c.receiveConnectors.find((r) => r.name === 'Default EX01')!.bindings, ['0.0.0.0:2525', '[::]:2525']);
  });

  test('usage presets fill authMechanism, permissionGroups and bindings; written values win', () => {
    const c = load(`receiveConnectors:
  - { name: Sub, usage: Client }
  - { name: Inet, usage: Internet, bindings: ["0.0.0.0:25"], remoteIPRanges: ["192.0.2.0/24"] }
  - { name: Int, usage: Internal, bindings: ["0.0.0.0:2526"], permissionGroups: [ExchangeServers] }
`);
    const [sub, inet, int] = c.receiveConnectors;
    assert.deepEqual(sub!.bindings, ['0.0.0.0:587']);
    assert.deepEqual(sub!.permissionGroups, ['ExchangeUsers']);
    assert.equal(sub!.messageRateLimit, 5);
    assert.deepEqual(inet!.authMechanism, ['Tls']);
    assert.deepEqual(inet!.permissionGroups, ['AnonymousUsers']);
    assert.deepEqual(inet!.remoteIPRanges, ['192.0.2.0/24']);
    assert.equal(int!.transportRole, 'HubTransport');
    assert.deepEqual(int!.permissionGroups, ['ExchangeServers']);
    assert.deepEqual(int!.authMechanism, ['Tls', 'ExchangeServer']);
  });

  test('permissions are normalised to the protocol-log spelling', () => {
    const c = load(`receiveConnectors:
  - { name: R, bindings: ["0.0.0.0:25"], permissionGroups: [AnonymousUsers], permissions: [ms-Exch-SMTP-Accept-Any-Recipient, AcceptAnySender, bypassantispam] }
`);
    assert.deepEqual(c.receiveConnectors[0]!.permissions, ['SMTPAcceptAnyRecipient', 'SMTPAcceptAnySender', 'BypassAntiSpam']);
  });

  test('send connectors: size by usage, DNS routing unless smart hosts, the local server as source', () => {
    const c = load(`server: { name: EX01, fqdn: ex01.contoso.com }
sendConnectors:
  - { name: Custom, addressSpaces: ["a.example"] }
  - { name: Internet, usage: Internet, addressSpaces: ["*"] }
  - { name: Partner, usage: Partner, addressSpaces: ["b.example"] }
  - { name: Internal, usage: Internal, addressSpaces: ["c.example;3"], smartHosts: ["10.0.0.1"] }
  - { name: Own, usage: Internal, addressSpaces: ["d.example"], maxMessageSize: 10MB }
`);
    const by = Object.fromEntries(c.sendConnectors.map((s) => [s.name, s]));
    assert.equal(by.Custom!.maxMessageSize, 35 * MB);
    assert.equal(by.Internet!.maxMessageSize, 35 * MB);
    assert.equal(by.Partner!.maxMessageSize, 35 * MB);
    assert.equal(by.Internal!.maxMessageSize, Number.POSITIVE_INFINITY);
    assert.equal(by.Own!.maxMessageSize, 10 * MB);
    assert.equal(by.Internet!.dnsRoutingEnabled, true);
    assert.equal(by.Internal!.dnsRoutingEnabled, false);
    assert.deepEqual(by.Internet!.sourceTransportServers, ['EX01']);
    assert.equal(by.Internet!.fqdn, 'ex01.contoso.com');
    assert.equal(by.Internet!.port, 25);
    assert.deepEqual(by.Internal!.addressSpaces, [{ type: 'SMTP', address: 'c.example', cost: 3, text: 'SMTP:c.example;3' }]);
  });

  test('transport service retry and expiry defaults are Exchange\'s', () => {
    const t = load('').transportService;
    assert.equal(t.queueGlitchRetryCount, 4);
    assert.equal(t.queueGlitchRetryInterval, 60_000);
    assert.equal(t.transientFailureRetryCount, 6);
    assert.equal(t.transientFailureRetryInterval, 5 * 60_000);
    assert.equal(t.outboundConnectionFailureRetryInterval, 10 * 60_000);
    assert.equal(t.messageRetryInterval, 15 * 60_000);
    assert.equal(t.delayNotificationTimeout, 4 * 3_600_000);
    assert.equal(t.messageExpirationTimeout, 2 * 86_400_000);
    assert.equal(t.maxOutboundConnections, 1000);
    assert.equal(t.maxPerDomainOutboundConnections, 20);
    assert.equal(t.poisonThreshold, 2);
    assert.equal(t.unreachableAction, 'queue');
  });

  test('mailbox delivery defaults to maildirs under the data directory', () => {
    assert.equal(load('server: { dataDir: /srv/my/ }').mailboxDelivery.maildirRoot, '/srv/my/mail/{domain}/{local}');
  });

  test('the effective config is frozen and names its source', () => {
    const c = load('');
    assert.equal(c.source, 'test.yaml');
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.receiveConnectors[0]!.bindings));
  });
});

describe('warnings do not fail the load', () => {
  test('Tls without a certificate: STARTTLS will not be offered', () => {
    const r = parseConfigText('receiveConnectors:\n  - { name: In, bindings: ["0.0.0.0:25"], permissionGroups: [AnonymousUsers] }\n', 'w.yaml');
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.deepEqual(r.warnings.map(formatIssue), ['w.yaml:1:1: warning: no TLS certificate is configured (tls.certFile): STARTTLS will not be offered on "In"']);
  });

  test('a connector that grants nothing accepts no mail', () => {
    const r = parseConfigText('receiveConnectors:\n  - name: Nothing\n    usage: Custom\n    bindings: ["0.0.0.0:25"]\n    authMechanism: [None]\n', 'w.yaml');
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.deepEqual(r.warnings.map(formatIssue), ['w.yaml:2:5: warning: Receive connector "Nothing" grants no permissions (permissionGroups None and no permissions): it accepts no mail']);
  });
});

describe('reading files', () => {
  test('an unreadable file is one issue naming it', async () => {
    const r = await loadConfigFile('/nonexistent/mailyard-test/mailyard.yaml');
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.issues.map(formatIssue), ['/nonexistent/mailyard-test/mailyard.yaml:1:1: cannot read the configuration file: no such file']);
  });

  test('a file loads with its path in the issues', async () => {
    const r = await loadConfigFile(`${root}test/fixtures/configs/invalid/44-unknown-section/mailyard.yaml`);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(formatIssue(r.issues[0]!), /44-unknown-section\/mailyard\.yaml:1:1: \(top level\): unknown key "sendConnector"; did you mean "sendConnectors"\?$/);
  });
});

describe('damaged files never throw', () => {
  test('random deletions and insertions in a full configuration give issues or a config, never an exception', () => {
    const source = readFileSync(`${root}test/fixtures/configs/valid/everything.yaml`, 'utf8');
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const junk = [':', '-', '[', ']', '{', '}', '"', "'", '*', '&a', '*a', '\n', '  ', '0', 'x', '#', '!!', '|', '>', '?'];
    for (let i = 0; i < 150; i++) {
      let text = source;
      for (let k = 0; k < 1 + rand(4); k++) {
        const at = rand(text.length);
        text = rand(2) === 0 ? text.slice(0, at) + text.slice(at + 1 + rand(20)) : text.slice(0, at) + junk[rand(junk.length)]! + text.slice(at);
      }
      const r = parseConfigText(text, 'fuzz.yaml');
      const issues = r.ok ? r.warnings : r.issues;
      for (const issue of issues) {
        assert.ok(issue.line >= 1 && issue.col >= 1, formatIssue(issue));
        assert.doesNotMatch(issue.message, /\n\s+at /);
      }
    }
  });
});
