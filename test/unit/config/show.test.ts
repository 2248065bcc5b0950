/**
 * `config show`: a golden output for a small configuration (update it only with
 * UPDATE_GOLDEN=1), and the round trip show -> parse -> the same Config for every valid config.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatIssue, parseConfigText, showConfig, type Config } from '../../../src/config/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function load(file: string): Config {
  const r = parseConfigText(readFileSync(root + file, 'utf8'), file);
  if (!r.ok) assert.fail(r.issues.map(formatIssue).join('\n'));
  return r.config;
}

function withoutSource(c: Config): Omit<Config, 'source'> {
  const { source: _source, ...rest } = c;
  return rest;
}

describe('config show', () => {
  test('golden output for a small configuration', () => {
    const shown = showConfig(load('test/fixtures/configs/valid/small.yaml'), ['effective configuration of small.yaml']);
    const golden = `${root}test/fixtures/configs/valid/small.show.yaml`;
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, shown);
    assert.equal(shown, readFileSync(golden, 'utf8'), 'config show output changed; if intended, rerun with UPDATE_GOLDEN=1 and review the diff');
  });

  test('sizes, durations and unlimited counts are shown the way they are written', () => {
    const shown = showConfig(load('test/fixtures/configs/valid/small.yaml'));
    assert.match(shown, /^ {4}maxMessageSize: 36MB$/m);
    assert.match(shown, /^ {4}connectionInactivityTimeout: 5m$/m);
    assert.match(shown, /^ {2}messageExpirationTimeout: 1d2h3m4s$/m);
    assert.match(shown, /^ {2}maxOutboundConnections: unlimited$/m);
    assert.match(shown, /^ {4}maxMessageSize: unlimited$/m); // the Internal send connector
    assert.match(shown, /^ {4}addressSpaces: \[ SMTP:\*;1 \]$/m);
    assert.match(shown, /^ {4}permissions: \[ SMTPAcceptAnyRecipient \]$/m);
  });

  test('keys come in schema order', () => {
    const shown = showConfig(load('test/fixtures/configs/valid/small.yaml'));
    const top = [...shown.matchAll(/^([a-zA-Z]+):/gm)].map((m) => m[1]);
    assert.deepEqual(top, ['server', 'dns', 'tls', 'acceptedDomains', 'users', 'mailboxDelivery', 'organization', 'receiveConnectors', 'sendConnectors', 'foreignConnectors', 'deliveryAgentConnectors', 'transportService']);
  });

  test('the default Receive connectors are shown when the file has none', () => {
    const shown = showConfig(load('test/fixtures/configs/valid/defaults-only.yaml'));
    for (const name of ['Default Frontend EX02', 'Client Frontend EX02', 'Outbound Proxy Frontend EX02', 'Default EX02', 'Client Proxy EX02']) {
      assert.match(shown, new RegExp(`^ {2}- name: ${name}$`, 'm'));
    }
  });

  for (const file of ['config/dev.yaml', 'config/mailyard.yaml', 'test/fixtures/configs/valid/small.yaml', 'test/fixtures/configs/valid/everything.yaml', 'test/fixtures/configs/valid/defaults-only.yaml']) {
    test(`round trip: show -> parse gives the same config (${file})`, () => {
      const config = load(file);
      const again = parseConfigText(showConfig(config), 'shown.yaml');
      assert.ok(again.ok, again.ok ? '' : again.issues.map(formatIssue).join('\n'));
      if (!again.ok) return;
      assert.deepEqual(withoutSource(again.config), withoutSource(config));
    });
  }
});
