/**
 * The durability promise end to end: the real daemon accepts mail over SMTP while its smart host
 * is down, is killed with SIGKILL, restarts on the same spool, and every message that got a 250
 * reaches a real SMTP sink once the smart host is up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { DaemonProcess, freePorts, tempDir, waitForPort, writeConfig } from '../../helpers/daemon.js';
import { startSinkOnPort, type SmtpSink } from '../../helpers/smtp-sink.js';
import { messageIdOf, relayDaemonConfig } from './helpers.js';

test('SIGKILL after acknowledging: every acknowledged message reaches the sink after a restart', async () => {
  const tmp = tempDir();
  const daemons: DaemonProcess[] = [];
  let sink: SmtpSink | undefined;
  try {
    const [smtpPort, sinkPort] = await freePorts(2);
    const file = writeConfig(tmp.path, relayDaemonConfig({ dir: tmp.path, name: 'CRASH01', fqdn: 'mx.crash.example', smtpPort: smtpPort!, sinkPort: sinkPort!, acceptedDomain: 'crash.example' }));
    const d1 = new DaemonProcess(file);
    daemons.push(d1);
    await waitForPort(smtpPort!, 20_000);

    const client = nodemailer.createTransport({ host: '127.0.0.1', port: smtpPort!, secure: false, ignoreTLS: true, pool: true, maxConnections: 4 });
    const acked: string[] = [];
    const sends = Array.from({ length: 12 }, async (_, i) => {
      const messageId = `<crash-${i}@client.example>`;
      await client.sendMail({ from: 'ann@client.example', to: `r${i}@far.example`, subject: `crash ${i}`, text: `body ${i}`, messageId });
      acked.push(messageId);
    });
    await Promise.allSettled(sends);
    client.close();
    assert.equal(acked.length, 12, 'all 12 messages acknowledged');
    d1.kill();
    await d1.exitCode(10_000);

    sink = await startSinkOnPort('127.0.0.1', sinkPort!);
    const d2 = new DaemonProcess(file);
    daemons.push(d2);
    await sink.waitFor(() => new Set(sink!.messages.map((m) => messageIdOf(m.data))).size >= 12, 30_000);
    const arrived = new Set(sink.messages.map((m) => messageIdOf(m.data)));
    for (const id of acked) assert.ok(arrived.has(id), `${id} arrived`);
    d2.signal('SIGTERM');
    assert.equal(await d2.exitCode(20_000), 0);
  } finally {
    for (const d of daemons) d.kill();
    await sink?.close();
    tmp.cleanup();
  }
});
