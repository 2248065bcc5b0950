import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { configCheck, configShow, resolveConfigPath } from '../../../src/cli/config.js';
import { parseConfigText } from '../../../src/config/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function capture() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: { stdout: { write: (s: string) => (out.stdout += s) }, stderr: { write: (s: string) => (out.stderr += s) } },
  };
}

describe('mailyard config check', () => {
  test('a valid file exits 0', async () => {
    const { out, io } = capture();
    assert.equal(await configCheck(`${root}config/mailyard.yaml`, io), 0);
    assert.equal(out.stderr, '');
    assert.match(out.stdout, /configuration is valid/);
  });

  test('warnings go to stderr as FILE:LINE:COL: warning: and the exit code stays 0', async () => {
    const { out, io } = capture();
    const file = `${root}test/fixtures/configs/valid/defaults-only.yaml`;
    assert.equal(await configCheck(file, io), 0);
    assert.equal(out.stderr, `${file}:2:1: warning: no TLS certificate is configured (tls.certFile): STARTTLS will not be offered on "Default Frontend EX02", "Client Frontend EX02", "Outbound Proxy Frontend EX02", "Default EX02", "Client Proxy EX02"\n`);
  });

  test('an invalid file exits 1 and prints every problem, one per line', async () => {
    const { out, io } = capture();
    const file = `${root}test/fixtures/configs/invalid/39-every-problem/mailyard.yaml`;
    assert.equal(await configCheck(file, io), 1);
    assert.deepEqual(out.stderr.trimEnd().split('\n'), [
      `${file}:2:3: server: unknown key "nmae"; did you mean "name"?`,
      `${file}:6:18: receiveConnectors[0].maxHopCount: expected a number, got the string "many"`,
      `${file}:9:20: sendConnectors[0].addressSpaces: needs at least 1 item`,
    ]);
  });

  test('a missing file exits 1 with one line naming it', async () => {
    const { out, io } = capture();
    assert.equal(await configCheck('/nonexistent/mailyard.yaml', io), 1);
    assert.equal(out.stderr, '/nonexistent/mailyard.yaml:1:1: cannot read the configuration file: no such file\n');
  });
});

describe('mailyard config show', () => {
  test('prints YAML that config check accepts', async () => {
    const { out, io } = capture();
    assert.equal(await configShow(`${root}config/dev.yaml`, io), 0);
    assert.match(out.stdout, /^ {2}- name: Default Frontend DEV$/m);
    const again = parseConfigText(out.stdout, 'shown.yaml');
    assert.ok(again.ok);
  });

  test('an invalid file exits 1 and prints nothing on stdout', async () => {
    const { out, io } = capture();
    assert.equal(await configShow(`${root}test/fixtures/configs/invalid/01-unknown-key/mailyard.yaml`, io), 1);
    assert.equal(out.stdout, '');
    assert.match(out.stderr, /mailyard\.yaml:7:5: receiveConnectors\[0\]: unknown key "maxMesageSize"; did you mean "maxMessageSize"\?/);
  });
});

describe('which configuration file', () => {
  const none = () => false;
  const etc = (p: string) => p === '/etc/mailyard/mailyard.yaml';
  test('--config wins', () => assert.equal(resolveConfigPath('my.yaml', { MAILYARD_CONFIG: 'env.yaml' }, etc), 'my.yaml'));
  test('then $MAILYARD_CONFIG', () => assert.equal(resolveConfigPath(undefined, { MAILYARD_CONFIG: 'env.yaml' }, etc), 'env.yaml'));
  test('then /etc/mailyard/mailyard.yaml when it exists', () => assert.equal(resolveConfigPath(undefined, {}, etc), '/etc/mailyard/mailyard.yaml'));
  test('else ./config/mailyard.yaml', () => assert.equal(resolveConfigPath(undefined, {}, none), './config/mailyard.yaml'));
  test('an empty $MAILYARD_CONFIG is ignored', () => assert.equal(resolveConfigPath(undefined, { MAILYARD_CONFIG: '' }, none), './config/mailyard.yaml'));
});
