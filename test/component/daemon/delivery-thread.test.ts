/**
 * transportService.deliveryThread: the Send connectors run on a worker thread. Through the real
 * daemon: messages arrive at a real SMTP sink byte for byte, a 5xx comes back as an NDR, the Send
 * protocol log is written, a reload moves new mail to the new smart host, and SIGTERM stops it all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { DaemonProcess, freePort, tempDir, waitForPort, writeConfig } from '../../helpers/daemon.js';
import { startSinkOnPort, type SmtpSink } from '../../helpers/smtp-sink.js';
import { messageIdOf, relayDaemonConfig } from '../queue/helpers.js';

function config(dir: string, smtpPort: number, sinkPort: number): string {
  return relayDaemonConfig({ dir, name: 'THREAD01', fqdn: 'mx.thread.example', smtpPort, sinkPort, acceptedDomain: 'thread.example' })
    .replace('    smartHosts:', '    protocolLoggingLevel: Verbose\n    smartHosts:')
    .replace('logLevel: warn', 'logLevel: info')
    .concat('  deliveryThread: true\n');
}

const sendLogText = (dir: string): string => {
  const d = join(dir, 'log', 'Hub', 'ProtocolLog', 'SmtpSend');
  try {
    return readdirSync(d).map((f) => readFileSync(join(d, f), 'latin1')).join('');
  } catch {
    return '';
  }
};

test('with deliveryThread on, mail is relayed byte for byte, bounces come back, logs are written, and reload switches smart hosts', async () => {
  const tmp = tempDir();
  let daemon: DaemonProcess | undefined;
  const sinks: SmtpSink[] = [];
  try {
    const [smtpPort, sinkA, sinkB] = [await freePort(), await freePort(), await freePort()];
    const a = await startSinkOnPort('127.0.0.1', sinkA!, { rcptReplies: { 'nobody@far.example': '550 5.1.1 No such user here' } });
    const b = await startSinkOnPort('127.0.0.1', sinkB!);
    sinks.push(a, b);
    const file = writeConfig(tmp.path, config(tmp.path, smtpPort!, sinkA!));
    daemon = new DaemonProcess(file);
    await waitForPort(smtpPort!, 20_000);
    await daemon.waitForLog((l) => l.code === 'DELIVERY_THREAD', 15_000);

    const client = nodemailer.createTransport({ host: '127.0.0.1', port: smtpPort!, secure: false, ignoreTLS: true, pool: true, maxConnections: 4 });
    // Raw messages, so the bytes at the sink can be compared with the bytes sent; message 9 is
    // large enough (~270 KB) to travel as a file path rather than in memory.
    const body = (i: number) => `line one of ${i}\r\n.leading dot\r\n${`${'z'.repeat(900)}\r\n`.repeat(i === 9 ? 300 : i)}last line\r\n`;
    const raw = (i: number) => `From: <ann@client.example>\r\nTo: <r${i}@far.example>\r\nSubject: thread ${i}\r\nMessage-ID: <thread-${i}@client.example>\r\n\r\n${body(i)}`;
    await Promise.all(Array.from({ length: 10 }, (_, i) => client.sendMail({ envelope: { from: 'ann@client.example', to: [`r${i}@far.example`] }, raw: raw(i) })));
    await a.waitFor(() => a.messages.length >= 10, 20_000);
    for (let i = 0; i < 10; i++) {
      const m = a.messages.find((x) => messageIdOf(x.data) === `<thread-${i}@client.example>`);
      assert.ok(m, `message ${i} arrived`);
      assert.deepEqual(m.rcptTo.map((r) => r.address), [`r${i}@far.example`]);
      const text = m.data.toString('latin1');
      assert.ok(text.startsWith('Received: from '), 'our Received header comes first');
      assert.ok(text.endsWith(`\r\n${raw(i)}`), `message ${i} arrived unchanged after our Received header`);
    }

    // A 5xx from the next hop fails the recipient; the NDR to the sender goes out the same way.
    await client.sendMail({ from: 'ann@client.example', to: 'nobody@far.example', subject: 'to nobody', text: 'x', messageId: '<thread-bounce@client.example>' });
    await a.waitFor(() => a.messages.some((m) => m.mailFrom === '' && m.rcptTo.some((r) => r.address === 'ann@client.example')), 20_000);
    const ndr = a.messages.find((m) => m.mailFrom === '')!.data.toString('latin1');
    assert.match(ndr, /550 5\.1\.1 No such user here/);

    // The Send protocol log is written by the thread (flushed within 250 ms).
    const deadline = Date.now() + 10_000;
    const rejected = /Smart host.*550 5\.1\.1 No such user here/s;
    while (!rejected.test(sendLogText(tmp.path)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(sendLogText(tmp.path), rejected);

    // Reload: new mail goes to the new smart host.
    writeConfig(tmp.path, config(tmp.path, smtpPort!, sinkB!));
    daemon.signal('SIGHUP');
    await daemon.waitForLog((l) => l.code === 'RELOADED', 15_000);
    await client.sendMail({ from: 'ann@client.example', to: 'after@far.example', subject: 'after reload', text: 'moved', messageId: '<thread-after@client.example>' });
    await b.waitFor(() => b.messages.some((m) => messageIdOf(m.data) === '<thread-after@client.example>'), 20_000);
    client.close();

    daemon.signal('SIGTERM');
    assert.equal(await daemon.exitCode(20_000), 0);
  } finally {
    daemon?.kill();
    for (const s of sinks) await s.close();
    tmp.cleanup();
  }
});
