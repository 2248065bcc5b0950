/**
 * Certificates as an administrator configures them: tls.certFile is the default, tls.certificates
 * are served by SNI name, and a connector whose fqdn names one of them presents it by default.
 * Checked on the certificate a real TLS client receives after STARTTLS from the running daemon.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { DaemonProcess, freePorts, tempDir, writeConfig } from '../../helpers/daemon.js';
import { LineClient } from '../../helpers/smtp-client.js';

const tmp = tempDir();
let daemon: DaemonProcess | undefined;
after(() => {
  daemon?.kill();
  tmp.cleanup();
});

function makeCert(name: string): { cert: string; key: string } {
  const cert = join(tmp.path, `${name}.crt`);
  const key = join(tmp.path, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`], { stdio: 'ignore' });
  return { cert, key };
}

/** EHLO, STARTTLS, handshake (with SNI when given); resolves the CN of the server's certificate. */
async function certificateCN(port: number, servername?: string): Promise<string> {
  const c = await LineClient.connect(port);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  assert.equal((await c.cmd('STARTTLS')).code, 220);
  await c.upgrade(servername ? { servername } : {});
  const cn = String(c.peerCertificate()?.subject?.CN);
  c.close();
  return cn;
}

test('STARTTLS presents the connector certificate by default and the named one for its SNI name', async () => {
  const main = makeCert('default.test.example');
  const mx2 = makeCert('mx2.test.example');
  const inbound = makeCert('inbound.test.example');
  const [p1, p2] = await freePorts(2);
  const file = writeConfig(
    tmp.path,
    `server:
  name: TLS01
  fqdn: default.test.example
  dataDir: ${tmp.path}/spool
  logDir: ${tmp.path}/log
  admin: { listen: "127.0.0.1:0" }
tls:
  certFile: ${main.cert}
  keyFile: ${main.key}
  certificates:
    - { name: mx2.test.example, certFile: ${mx2.cert}, keyFile: ${mx2.key} }
    - { name: inbound.test.example, certFile: ${inbound.cert}, keyFile: ${inbound.key} }
receiveConnectors:
  - name: Plain
    bindings: ["127.0.0.1:${p1}"]
    permissionGroups: [AnonymousUsers]
  - name: Inbound
    bindings: ["127.0.0.1:${p2}"]
    fqdn: inbound.test.example
    permissionGroups: [AnonymousUsers]
`,
  );
  daemon = new DaemonProcess(file);
  await daemon.waitForLog((l) => l.code === 'STARTED');
  assert.equal(await certificateCN(p1), 'default.test.example');
  assert.equal(await certificateCN(p1, 'mx2.test.example'), 'mx2.test.example');
  assert.equal(await certificateCN(p2), 'inbound.test.example', 'the connector fqdn picks its certificate');
  daemon.signal('SIGTERM');
  assert.equal(await daemon.exitCode(), 0);
});
