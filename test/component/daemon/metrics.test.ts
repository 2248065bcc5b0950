/**
 * End to end through the real daemon: a message sent to a Receive connector lands in the local
 * Maildir, and the admin endpoint's /metrics counts it (RECEIVE and DELIVER) next to the gauges.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonProcess, freePort, maildirDaemonConfig, tempDir, writeConfig } from '../../helpers/daemon.js';
import { LineClient } from '../../helpers/smtp-client.js';

const tmp = tempDir();
let daemon: DaemonProcess | undefined;
after(() => {
  daemon?.kill();
  tmp.cleanup();
});

test('a delivered message shows in /metrics and in the Maildir', async () => {
  const port = await freePort();
  const file = writeConfig(
    tmp.path,
    maildirDaemonConfig({ name: 'MET01', domain: 'metrics.example', port, dataDir: `${tmp.path}/spool`, logDir: `${tmp.path}/log`, mailRoot: `${tmp.path}/mail` }),
  );
  daemon = new DaemonProcess(file);
  const started = await daemon.waitForLog((l) => l.code === 'STARTED');
  const admin = (started.listeners as string[]).find((l) => l.startsWith('admin '))!.slice('admin '.length);

  const c = await LineClient.connect(port);
  assert.equal((await c.read()).code, 220);
  for (const line of ['EHLO client.example', 'MAIL FROM:<sender@elsewhere.example>', 'RCPT TO:<carol@metrics.example>', 'DATA']) {
    assert.ok((await c.cmd(line)).code < 400, line);
  }
  assert.match((await c.cmd('Subject: metrics\r\n\r\nhello\r\n.')).raw, /^250 2\.6\.0 .*Queued mail for delivery/);
  c.close();

  const box = join(tmp.path, 'mail', 'metrics.example', 'carol', 'new');
  const until = Date.now() + 10000;
  while (!(existsSync(box) && readdirSync(box).length > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  const files = readdirSync(box);
  assert.equal(files.length, 1);
  assert.match(readFileSync(join(box, files[0]!), 'utf8'), /Subject: metrics/);

  let body = '';
  while (Date.now() < until + 5000) {
    body = await (await fetch(`http://${admin}/metrics`)).text();
    if (/mailyard_tracking_events_total\{event="DELIVER"/.test(body)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(body, /mailyard_tracking_events_total\{event="RECEIVE",source="SMTP"\} 1\b/);
  assert.match(body, /mailyard_recipients_total\{event="DELIVER"\} 1\b/);
  assert.match(body, /^mailyard_queue_messages 0$/m);
  assert.match(body, /^# HELP mailyard_smtp_sessions /m);

  daemon.signal('SIGTERM');
  assert.equal(await daemon.exitCode(), 0);
});
