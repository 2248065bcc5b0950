/**
 * The durability target under load: the real daemon relays to a real SMTP sink while four clients
 * keep sending; it is killed with SIGKILL three times at moments that fall in the middle of
 * receiving, spooling and delivering, and restarted on the same spool each time. Every message
 * that got a 250 must reach the sink in the end. Duplicates are possible by design (a delivery
 * whose record update was cut off is repeated: at least once) and are counted, not failed.
 *
 * A message that happens to be in flight at two of the kills is moved to the Poison queue, as
 * poison detection must (the daemon cannot tell a SIGKILL from a crash the message caused). It is
 * kept, not lost: the test resumes such messages through the admin API, as an administrator
 * would, and they too must reach the sink.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { DaemonProcess, freePorts, tempDir, waitForPort, writeConfig } from '../../helpers/daemon.js';
import { startSinkOnPort, type SmtpSink } from '../../helpers/smtp-sink.js';
import { messageIdOf, relayDaemonConfig } from './helpers.js';

const KILLS = 3;
const ACKS_PER_LIFE = 25;


test('three SIGKILLs under load lose no acknowledged message', async (t) => {
  const tmp = tempDir();
  const daemons: DaemonProcess[] = [];
  let sink: SmtpSink | undefined;
  let sending = true;
  try {
    const [smtpPort, sinkPort, adminPort] = await freePorts(3);
    sink = await startSinkOnPort('127.0.0.1', sinkPort!);
    const file = writeConfig(tmp.path, relayDaemonConfig({ dir: tmp.path, name: 'KILL01', fqdn: 'mx.kill.example', smtpPort: smtpPort!, sinkPort: sinkPort!, adminPort: adminPort!, connectorExtra: ['maxInboundConnectionPerSource: unlimited', 'tarpitInterval: 0s'] }));
    const acked: string[] = [];
    let n = 0;

    // Four clients, one message per connection; a refused or cut connection is simply not acked.
    const sender = async () => {
      const deadline = Date.now() + 60_000;
      while (sending && Date.now() < deadline) {
        const i = n++;
        const messageId = `<kill-${i}@client.example>`;
        const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtpPort!, secure: false, ignoreTLS: true, connectionTimeout: 2000, greetingTimeout: 2000, socketTimeout: 4000 });
        try {
          await transport.sendMail({ from: 'ann@client.example', to: `r${i}@far.example`, subject: `kill ${i}`, text: `body ${i}\n`.repeat(40), messageId });
          acked.push(messageId);
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        } finally {
          transport.close();
        }
      }
    };

    let d = new DaemonProcess(file);
    daemons.push(d);
    await waitForPort(smtpPort!, 20_000);
    const senders = Array.from({ length: 4 }, sender);
    for (let k = 0; k < KILLS; k++) {
      const target = acked.length + ACKS_PER_LIFE;
      const until = Date.now() + 20_000;
      while (acked.length < target && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      d.kill();
      await d.exitCode(10_000);
      d = new DaemonProcess(file);
      daemons.push(d);
      await waitForPort(smtpPort!, 20_000);
    }
    sending = false;
    await Promise.all(senders);
    assert.ok(acked.length >= KILLS * ACKS_PER_LIFE, `enough messages were acknowledged (${acked.length})`);

    const admin = `http://127.0.0.1:${adminPort}`;
    const poisoned = new Set<string>();
    const allArrived = () => {
      const arrived = new Set(sink!.messages.map((m) => messageIdOf(m.data)));
      return acked.every((id) => arrived.has(id));
    };
    for (const until = Date.now() + 45_000; !allArrived() && Date.now() < until; ) {
      const res = await fetch(`${admin}/messages?queue=Poison`).catch(() => undefined);
      const list = res?.ok ? ((await res.json()) as { id: string }[]) : [];
      for (const m of list) {
        const id = m.id;
        poisoned.add(id);
        await fetch(`${admin}/messages/${encodeURIComponent(id)}/resume`, { method: 'POST' });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const arrived = new Set(sink.messages.map((m) => messageIdOf(m.data)));
    const missing = acked.filter((id) => !arrived.has(id));
    assert.deepEqual(missing, [], `acknowledged but never delivered (of ${acked.length})`);
    const duplicates = sink.messages.length - arrived.size;
    t.diagnostic(`${acked.length} acknowledged over ${KILLS + 1} daemon lives, all delivered (${poisoned.size} after resuming them from the Poison queue); ${duplicates} duplicate deliveries`);
    // At least once, never silently zero; duplicates stay a small fraction of what was sent.
    assert.ok(duplicates <= acked.length / 2, `${duplicates} duplicate deliveries of ${acked.length}`);
    d.signal('SIGTERM');
    assert.equal(await d.exitCode(20_000), 0);
  } finally {
    sending = false;
    for (const x of daemons) x.kill();
    await sink?.close();
    tmp.cleanup();
  }
});
