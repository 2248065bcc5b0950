import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';
import { connectorMatch } from '../../../src/cli/connector.js';

const config = buildConfig(
  configSchema.parse({
    server: { name: 'EX01', fqdn: 'mail.contoso.com' },
    receiveConnectors: [
      { name: 'Internet', usage: 'Internet', bindings: ['0.0.0.0:25', '[::]:25'] },
      { name: 'Relay', usage: 'Custom', bindings: ['0.0.0.0:25'], remoteIPRanges: ['192.0.2.0/24'], permissionGroups: ['AnonymousUsers'], permissions: ['SMTPAcceptAnyRecipient'] },
    ],
  }),
  '<test>',
);

test('connector match explains the choice step by step', () => {
  const r = connectorMatch(config, '0.0.0.0:25', '192.0.2.7');
  assert.equal(r.ok, true);
  assert.equal(r.json.connector, 'Relay');
  assert.equal(r.json.remoteIPRange, '192.0.2.0/24');
  assert.match(r.text, /^Connection to 0\.0\.0\.0:25 from 192\.0\.2\.7:\n {2}1\. candidate "Internet"/);
  assert.match(r.text, /most specific remote range: 256 addresses \("Relay"\)/);
  assert.match(r.text, /Receive connector: Relay \(FrontendTransport, remote range 192\.0\.2\.0\/24\)/);
  assert.match(r.text, /Permissions before authentication: SMTPSubmit SMTPAcceptAnyRecipient SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender AcceptRoutingHeaders/);
  assert.equal(connectorMatch(config, '10.0.0.1:25', '198.51.100.1').json.connector, 'Internet');
  assert.equal(connectorMatch(config, '[::1]:25', '2001:db8::1').json.connector, 'Internet');
});

test('connector match reports a refusal and bad input', () => {
  const r = connectorMatch(config, '10.0.0.1:587', '198.51.100.1');
  assert.equal(r.ok, false);
  assert.equal(r.json.connector, null);
  assert.match(r.text, /No Receive connector: no enabled Receive connector is bound to 10\.0\.0\.1:587/);
  assert.equal(connectorMatch(config, 'nonsense', '1.2.3.4').ok, false);
});
