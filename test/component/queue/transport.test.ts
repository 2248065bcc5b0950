import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Transport } from '../../../src/queue/manager.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { IntakeError } from '../../../src/model/intake.js';
import { CaptureTracking, OK, PERM, RecordingAgent, TEMP, logger, makeConfig, message, request, spooledContent, tempDir, waitFor } from './helpers.js';

async function setup(extra: Record<string, unknown> = {}, agent = new RecordingAgent()) {
  const { dir, cleanup } = await tempDir();
  const clock = new FakeClock();
  const tracking = new CaptureTracking();
  const config = makeConfig(dir, extra);
  const t = new Transport({ config, logger, tracking, clock, agents: agent.factory });
  await t.start();
  return { dir, cleanup, clock, tracking, config, t, agent };
}

const spoolFiles = async (dir: string, sub: 'messages' | 'log' | 'quarantine') => (await readdir(join(dir, 'queue', 'v1', sub))).filter((n) => !n.startsWith('.'));
/** The latest record of every queued message, read from the record log files as an administrator would. */
async function records(dir: string): Promise<Map<string, any>> {
  const out = new Map<string, any>();
  for (const f of (await spoolFiles(dir, 'log')).sort()) {
    for (const line of (await readFile(join(dir, 'queue', 'v1', 'log', f), 'utf8')).split('\n')) {
      if (!line) continue;
      const o = JSON.parse(line);
      if (o.removed) out.delete(o.removed);
      else out.set(o.id, o);
    }
  }
  return out;
}

describe('Transport: intake and delivery', () => {
  test('an accepted message is on disk before accept resolves, delivered with CRLF endings, then removed', async () => {
    const s = await setup();
    try {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      s.agent.decide = async () => { await gate; return OK; };
      const res = await s.t.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example'], { receivedAt: new Date(s.clock.now()), prepend: 'Received: from client by mx.contoso.com\r\n' }), message());
      assert.deepEqual([...(await records(s.dir)).keys()], [res.id]);
      const content = (await spooledContent(s.dir, res.id))?.toString('latin1') ?? '';
      assert.ok(content.startsWith('Received: from client by mx.contoso.com\r\nFrom: Ann'));
      assert.ok(!/[^\r]\n/.test(content), `every LF is preceded by CR: ${JSON.stringify(content)}`);
      assert.equal(res.size, content.length);
      release();
      await waitFor(async () => (await records(s.dir)).size === 0, 'record removal');
      assert.equal(s.agent.batches.length, 1);
      assert.deepEqual(s.agent.batches[0]!.recipients, ['x@tailspin.example']);
      await waitFor(async () => (await spoolFiles(s.dir, 'messages')).length === 0, 'content removal');
      await waitFor(() => s.tracking.ids().includes('SEND'), 'SEND tracking event');
      assert.ok(s.tracking.ids().includes('RECEIVE'));
    } finally {
      await s.t.stop(100);
      await s.cleanup();
    }
  });

  test('bifurcation: one message, two next hops, each agent call gets only its recipients, content stored once', async () => {
    const s = await setup();
    try {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      s.agent.decide = async () => { await gate; return OK; };
      await s.t.intake.accept(request('ann@fabrikam.example', ['bob@contoso.com', 'x@tailspin.example', 'carol@contoso.com', 'y@tailspin.example'], { receivedAt: new Date(s.clock.now()) }), message());
      await waitFor(() => s.agent.batches.length === 2, 'two batches');
      assert.equal((await spoolFiles(s.dir, 'messages')).length, 1, 'content stored once');
      const mailbox = s.agent.batches.find((b) => b.key.deliveryType === 'SmtpDeliveryToMailbox')!;
      const remote = s.agent.batches.find((b) => b.key.deliveryType === 'DnsConnectorDelivery')!;
      assert.deepEqual(mailbox.recipients, ['bob@contoso.com', 'carol@contoso.com']);
      assert.deepEqual(remote.recipients, ['x@tailspin.example', 'y@tailspin.example']);
      assert.equal(remote.key.nextHopDomain, 'tailspin.example');
      assert.equal(mailbox.body, remote.body);
      release();
      await waitFor(async () => (await records(s.dir)).size === 0, 'removal');
    } finally {
      await s.t.stop(100);
      await s.cleanup();
    }
  });

  test('a 4xx is retried after messageRetryInterval on the clock, and only then', async () => {
    const s = await setup();
    try {
      let n = 0;
      s.agent.decide = () => (n++ === 0 ? TEMP : OK);
      await s.t.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example'], { receivedAt: new Date(s.clock.now()) }), message());
      await waitFor(() => s.agent.batches.length === 1, 'first attempt');
      await s.t.whenIdle();
      const rec = [...(await records(s.dir)).values()][0];
      assert.equal(rec.recipients[0].attempts, 1);
      assert.match(rec.recipients[0].lastError, /451 4\.3\.0/);
      const [q] = s.t.listMessages().filter((m) => m.recipients[0]!.address === 'x@tailspin.example');
      assert.equal(q!.status, 'Retry');
      s.clock.advance(14 * 60_000);
      await s.t.whenIdle();
      assert.equal(s.agent.batches.length, 1, 'not retried before 15 minutes');
      s.clock.advance(60_000);
      await waitFor(() => s.agent.batches.length === 2, 'second attempt');
      await waitFor(async () => (await records(s.dir)).size === 0, 'removal');
      assert.ok(s.tracking.ids().includes('DEFER'));
    } finally {
      await s.t.stop(100);
      await s.cleanup();
    }
  });


  test('a message that leaves the queue takes its delay-notice, expiry and retry wake-ups with it', async () => {
    // Before: every accepted message left a wake-up four hours ahead (its delay notice) in the
    // queue's timer heap, so a server relaying 100 messages/s held 1.4 million of them.
    const s = await setup();
    try {
      let n = 0;
      s.agent.decide = (address) => (address.startsWith('slow') && n++ === 0 ? TEMP : OK);
      for (let i = 0; i < 40; i++) await s.t.intake.accept(request('ann@fabrikam.example', [`r${i}@tailspin.example`], { receivedAt: new Date(s.clock.now()) }), message());
      await s.t.intake.accept(request('ann@fabrikam.example', ['slow@tailspin.example'], { receivedAt: new Date(s.clock.now()) }), message());
      await waitFor(() => s.t.stats().messages === 1, 'the 40 delivered messages removed');
      await s.t.whenIdle();
      // The deferred one is still queued: its retry and its delay notice are scheduled, nothing else.
      assert.equal(s.t.stats().wakeups, 2);
      s.clock.advance(15 * 60_000);
      await waitFor(() => s.t.stats().messages === 0, 'the retried message delivered');
      assert.equal(s.t.stats().wakeups, 0);
    } finally {
      await s.t.stop(100);
      await s.cleanup();
    }
  });
  test('expiry: after messageExpirationTimeout the sender gets an NDR with 4.4.7, and the message is gone', async () => {
    const s = await setup({ transportService: { messageExpirationTimeout: '1h', delayNotificationTimeout: '30m' } });
    try {
      s.agent.decide = (rcpt, batch) => (batch.envelope.mailFrom === null ? OK : TEMP);
      const res = await s.t.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example'], { receivedAt: new Date(s.clock.now()) }), message('Budget'));
      await waitFor(() => s.agent.batches.length === 1, 'first attempt');
      for (let i = 0; i < 8; i++) {
        s.clock.advance(10 * 60_000);
        await s.t.whenIdle();
      }
      await waitFor(() => s.agent.batches.filter((b) => b.mailFrom === null).length === 2, 'delay notice and NDR');
      const [delay, ndr] = s.agent.batches.filter((b) => b.mailFrom === null);
      assert.deepEqual(delay!.recipients, ['ann@fabrikam.example']);
      assert.match(delay!.body, /Subject: Delivery delayed: Budget/);
      assert.match(delay!.body, /Action: delayed/);
      assert.match(ndr!.body, /Subject: Undeliverable: Budget/);
      assert.match(ndr!.body, /Status: 4\.4\.7/);
      assert.match(ndr!.body, /550 4\.4\.7 QUEUE\.Expired; message expired/);
      assert.match(ndr!.body, /x@tailspin\.example/);
      await waitFor(async () => !(await records(s.dir)).has(res.id), 'expired message removed');
      await waitFor(() => s.tracking.ids().includes('FAIL') && s.tracking.ids().includes('DSN'), 'FAIL and DSN tracking events');
    } finally {
      await s.t.stop(100);
      await s.cleanup();
    }
  });

  test('a permanent failure sends one NDR naming the recipient and the remote reply; NOTIFY=NEVER and the null sender get none', async () => {
    const s = await setup();
    try {
      s.agent.decide = (rcpt, batch) => (batch.envelope.mailFrom === null ? OK : PERM);
      await s.t.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example', { address: 'quiet@tailspin.example', notify: [] }], { receivedAt: new Date(s.clock.now()) }), message('Hi'));
      await s.t.intake.accept(request(null, ['z@tailspin.example'], { receivedAt: new Date(s.clock.now()) }), message('Bounce'));
      await waitFor(() => s.agent.batches.some((b) => b.mailFrom === null && b.recipients.includes('ann@fabrikam.example')), 'NDR');
      await s.t.whenIdle();
      await waitFor(async () => (await records(s.dir)).size === 0, 'queue empty');
      const ndrs = s.agent.batches.filter((b) => b.mailFrom === null && b.body.includes('Undeliverable'));
      assert.equal(ndrs.length, 1);
      assert.match(ndrs[0]!.body, /x@tailspin\.example/);
      assert.doesNotMatch(ndrs[0]!.body, /Final-Recipient: rfc822; quiet@tailspin\.example/);
      assert.match(ndrs[0]!.body, /550 5\.1\.1 User unknown/);
    } finally {
      await s.t.stop(100);
      await s.cleanup();
    }
  });

  test('no route: the recipient waits in Unreachable and flows after a reload adds a connector', async () => {
    const s = await setup({ sendConnectors: [{ name: 'Fabrikam only', addressSpaces: ['fabrikam.com'] }] });
    try {
      await s.t.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example'], { receivedAt: new Date(s.clock.now()) }), message());
      await s.t.whenIdle();
      const unreachable = s.t.listQueues().find((q) => q.identity === 'Unreachable')!;
      assert.equal(unreachable.messageCount, 1);
      assert.equal(s.agent.batches.length, 0);
      s.t.reload(makeConfig(s.dir));
      await waitFor(() => s.agent.batches.length === 1, 'delivery after reload');
      assert.equal(s.agent.batches[0]!.key.connector, 'To Internet');
      await waitFor(async () => (await records(s.dir)).size === 0, 'removal');
    } finally {
      await s.t.stop(100);
      await s.cleanup();
    }
  });

  test('per-hop concurrency is capped and a stalled hop does not starve another', async () => {
    const agent = new RecordingAgent();
    let releaseSlow!: () => void;
    const slow = new Promise<void>((r) => (releaseSlow = r));
    agent.decide = async (rcpt) => { if (rcpt.endsWith('@slow.example')) await slow; return OK; };
    const s = await setup({ transportService: { maxPerDomainOutboundConnections: 2, maxOutboundConnections: 3 } }, agent);
    try {
      for (let i = 0; i < 6; i++) await s.t.intake.accept(request('ann@fabrikam.example', [`u${i}@slow.example`], { receivedAt: new Date(s.clock.now()) }), message());
      for (let i = 0; i < 4; i++) await s.t.intake.accept(request('ann@fabrikam.example', [`v${i}@fast.example`], { receivedAt: new Date(s.clock.now()) }), message());
      await waitFor(() => agent.batches.filter((b) => b.recipients[0]!.endsWith('@fast.example')).length === 4, 'fast hop delivered while slow hop stalls');
      assert.equal(agent.maxActive.get('DnsConnectorDelivery:slow.example:To Internet'), 2);
      releaseSlow();
      await waitFor(() => agent.batches.length === 10, 'all delivered');
    } finally {
      await s.t.stop(100);
      await s.cleanup();
    }
  });

  test('disk full while spooling answers 452 4.3.1 and leaves nothing behind', async () => {
    const s = await setup();
    try {
      const body = new Readable({
        read() {
          this.push(Buffer.from('Subject: x\r\n\r\nabc\r\n'));
          const e = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
          this.destroy(e);
        },
      });
      await assert.rejects(s.t.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example']), body), (err: unknown) => {
        assert.ok(err instanceof IntakeError);
        assert.equal(err.reply.code, 452);
        assert.equal(err.reply.enhanced, '4.3.1');
        assert.equal(err.reply.text, 'Insufficient system storage');
        return true;
      });
      assert.deepEqual(await spoolFiles(s.dir, 'messages'), []);
      assert.equal((await records(s.dir)).size, 0);
    } finally {
      await s.t.stop(100);
      await s.cleanup();
    }
  });
});

describe('Transport: restarts', () => {
  test('per-recipient state survives a restart: the delivered recipient is not delivered again', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const clock = new FakeClock();
      const a1 = new RecordingAgent((rcpt) => (rcpt === 'a@tailspin.example' ? OK : TEMP));
      const t1 = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), clock, agents: a1.factory });
      await t1.start();
      await t1.intake.accept(request('ann@fabrikam.example', ['a@tailspin.example', 'b@tailspin.example'], { receivedAt: new Date(clock.now()) }), message());
      await waitFor(() => a1.batches.length === 1, 'first attempt');
      await t1.whenIdle();
      await t1.stop(100);

      const a2 = new RecordingAgent(() => OK);
      const t2 = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), clock, agents: a2.factory });
      await t2.start();
      assert.equal(t2.listMessages().length, 1);
      clock.advance(15 * 60_000);
      await waitFor(() => a2.batches.length === 1, 'retry after restart');
      assert.deepEqual(a2.batches[0]!.recipients, ['b@tailspin.example']);
      await waitFor(async () => (await records(dir)).size === 0, 'removal');
      await t2.stop(100);
    } finally {
      await cleanup();
    }
  });

  test('a corrupt record is quarantined with a log line and a tracking event; the other messages load', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const clock = new FakeClock();
      const a1 = new RecordingAgent(() => TEMP);
      const t1 = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), clock, agents: a1.factory });
      await t1.start();
      const good = await t1.intake.accept(request('ann@fabrikam.example', ['a@tailspin.example'], { receivedAt: new Date(clock.now()) }), message());
      const bad = await t1.intake.accept(request('ann@fabrikam.example', ['b@tailspin.example'], { receivedAt: new Date(clock.now()) }), message());
      await t1.whenIdle();
      await t1.stop(100);
      // Damage the bad message's record line in the log (as a disk error would), leaving the rest intact.
      const logDir = join(dir, 'queue', 'v1', 'log');
      for (const f of await spoolFiles(dir, 'log')) {
        const p = join(logDir, f);
        const text = await readFile(p, 'utf8');
        await writeFile(p, text.split('\n').map((l) => (l.includes(`"id":"${bad.id}"`) ? l.slice(0, Math.floor(l.length / 2)) : l)).join('\n'));
      }

      const tracking = new CaptureTracking();
      const t2 = new Transport({ config: makeConfig(dir), logger, tracking, clock, agents: new RecordingAgent().factory });
      await t2.start();
      assert.deepEqual(t2.messageIds(), [good.id]);
      const q = await spoolFiles(dir, 'quarantine');
      assert.ok(q.includes(`${bad.id}.json`));
      assert.ok(q.includes(`${bad.id}.eml`));
      assert.ok(tracking.events.some((e) => e.eventId === 'BADMAIL' && e.messageId === bad.id));
      await t2.stop(100);
    } finally {
      await cleanup();
    }
  });

  test('a message being processed during poisonThreshold crashes goes to the Poison queue', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const clock = new FakeClock();
      const hang = () => new RecordingAgent(() => new Promise(() => {}));
      const agent1 = hang();
      const t1 = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), clock, agents: agent1.factory });
      await t1.start();
      const res = await t1.intake.accept(request('ann@fabrikam.example', ['a@tailspin.example'], { receivedAt: new Date(clock.now()) }), message());
      // In the agent's hands (its file written first, as for any non-SMTP agent), then a "crash":
      // t1 is abandoned without stop().
      await waitFor(() => agent1.batches.length === 1, 'in flight');
      const agent2 = hang();
      const t2 = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), clock, agents: agent2.factory });
      await t2.start();
      await waitFor(() => agent2.batches.length === 1, 'in flight again');
      const tracking = new CaptureTracking();
      const a3 = new RecordingAgent();
      const t3 = new Transport({ config: makeConfig(dir), logger, tracking, clock, agents: a3.factory });
      await t3.start();
      const poison = t3.listQueues().find((q) => q.identity === 'Poison');
      assert.equal(poison?.messageCount, 1);
      assert.ok(tracking.ids().includes('POISONMESSAGE'));
      await t3.whenIdle();
      assert.equal(a3.batches.length, 0, 'poisoned messages are not delivered');
      await t3.resume(res.id);
      await waitFor(() => a3.batches.length === 1, 'resumed poison message is resubmitted');
      await t3.stop(100);
    } finally {
      await cleanup();
    }
  });
});
