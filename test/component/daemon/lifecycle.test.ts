/**
 * The daemon as an administrator runs it: `mailyard start` in the foreground, SIGHUP reloads
 * (valid: new listeners appear, old ones go, sessions in flight survive; invalid: refused, old
 * config keeps running), SIGTERM exits 0, and start-up problems exit 1 naming the cause.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { connect } from 'node:net';
import { DaemonProcess, freePort, freePorts, greeting, tempDir, waitForPort, writeConfig } from '../../helpers/daemon.js';

function config(dir: string, ports: number[], extra = ''): string {
  return `server:
  name: TEST01
  fqdn: mx.test.example
  dataDir: ${dir}/spool
  logDir: ${dir}/log
  admin: { listen: "127.0.0.1:0" }
acceptedDomains:
  - { domainName: test.example, domainType: Authoritative, default: true }
receiveConnectors:
${ports
  .map(
    (p, i) => `  - name: Inbound ${i}
    bindings: ["127.0.0.1:${p}"]
    permissionGroups: [AnonymousUsers]
    authMechanism: [None]
`,
  )
  .join('')}${extra}`;
}

describe('mailyard start', () => {
  const dirs: { cleanup(): void }[] = [];
  const daemons: DaemonProcess[] = [];
  after(() => {
    for (const d of daemons) d.kill();
    for (const d of dirs) d.cleanup();
  });

  test('greets on its binding at once, reloads on SIGHUP without dropping a session, and exits 0 on SIGTERM', async () => {
    const tmp = tempDir();
    dirs.push(tmp);
    const [p1, p2] = await freePorts(2);
    const file = writeConfig(tmp.path, config(tmp.path, [p1!]));
    const d = new DaemonProcess(file);
    daemons.push(d);
    await d.waitForLog((l) => l.code === 'STARTED');
    assert.match(await greeting(p1!), /^220 /);

    // A session opened before the reload must survive it.
    const held = connect(p1!, '127.0.0.1');
    held.setEncoding('utf8');
    let heldData = '';
    held.on('data', (x: string) => (heldData += x));
    await new Promise((r) => held.once('connect', r));

    // Valid reload: the listener on p1 goes away, one on p2 appears.
    writeConfig(tmp.path, config(tmp.path, [p2!]));
    d.signal('SIGHUP');
    await d.waitForLog((l) => l.code === 'RELOADED');
    await waitForPort(p2!);
    assert.match(await greeting(p2!), /^220 /);
    await assert.rejects(greeting(p1!), /ECONNREFUSED/);
    held.write('EHLO client.example\r\n');
    const until = Date.now() + 5000;
    while (!/250[ -]/.test(heldData) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.match(heldData, /250[ -]/, 'the session opened before the reload still answers');
    held.destroy();

    // Invalid reload: refused with the config check message; the running config stays.
    writeConfig(tmp.path, `${config(tmp.path, [p2!])}bogusKey: 1\n`);
    d.signal('SIGHUP');
    const refused = await d.waitForLog((l) => l.code === 'RELOAD_REFUSED' && /bogusKey/.test(l.msg));
    assert.match(refused.msg, /mailyard\.yaml:\d+:\d+: /);
    assert.match(await greeting(p2!), /^220 /);

    d.signal('SIGTERM');
    assert.equal(await d.exitCode(), 0);
  });

  test('a port already in use stops the start-up with exit 1 naming the binding', async () => {
    const tmp = tempDir();
    dirs.push(tmp);
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const busy = (blocker.address() as { port: number }).port;
    const free = await freePort();
    const d = new DaemonProcess(writeConfig(tmp.path, config(tmp.path, [free, busy])));
    daemons.push(d);
    assert.equal(await d.exitCode(), 1);
    assert.match(d.stderr, new RegExp(`127\\.0\\.0\\.1:${busy}`));
    // Nothing was left half-started: the other binding is free again.
    await assert.rejects(greeting(free), /ECONNREFUSED/);
    blocker.close();
  });

  test('a missing TLS certificate file is reported by name and the daemon exits 1', async () => {
    const tmp = tempDir();
    dirs.push(tmp);
    const port = await freePort();
    const text = `${config(tmp.path, [port])}tls:\n  certFile: ${tmp.path}/missing-cert.pem\n  keyFile: ${tmp.path}/missing-key.pem\n`;
    const d = new DaemonProcess(writeConfig(tmp.path, text));
    daemons.push(d);
    assert.equal(await d.exitCode(), 1);
    assert.match(d.stderr, /tls\.certFile: cannot read .*missing-cert\.pem: no such file/);
    assert.doesNotMatch(d.stderr, /\n\s+at /, 'no stack trace');
  });

  test('an invalid config file is refused at start with FILE:LINE:COL messages and exit 1', async () => {
    const tmp = tempDir();
    dirs.push(tmp);
    const file = writeConfig(tmp.path, 'server:\n  nmae: X\n');
    const d = new DaemonProcess(file);
    daemons.push(d);
    assert.equal(await d.exitCode(), 1);
    assert.match(d.stderr, /mailyard\.yaml:2:3: .*nmae.*did you mean "name"/);
  });
});
