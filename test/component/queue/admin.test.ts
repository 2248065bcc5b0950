import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transport } from '../../../src/queue/manager.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { startAdminServer } from '../../../src/admin/server.js';
import { queueCommand } from '../../../src/cli/queue.js';
import { CaptureTracking, OK, RecordingAgent, TEMP, logger, makeConfig, message, request, tempDir, waitFor } from './helpers.js';

test('queue verbs through the admin endpoint: list, messages, suspend, resume, export, remove --ndr, retry', async () => {
  const { dir, cleanup } = await tempDir();
  const clock = new FakeClock();
  const agent = new RecordingAgent((rcpt, batch) => (batch.envelope.mailFrom === null ? OK : TEMP));
  const tracking = new CaptureTracking();
  const t = new Transport({ config: makeConfig(dir), logger, tracking, clock, agents: agent.factory });
  await t.start();
  const admin = await startAdminServer({ listen: '127.0.0.1:0', allowNonLoopback: false, queue: t, logger });
  const config = makeConfig(dir, { server: { name: 'EX01', fqdn: 'mx.contoso.com', dataDir: dir, logDir: dir, admin: { listen: `127.0.0.1:${admin.port}` } } });
  const outText: string[] = [];
  const errText: string[] = [];
  const out = { stdout: (s: string) => outText.push(s), stderr: (s: string) => errText.push(s) };
  const run = async (verb: string, args: string[] = [], opts: Record<string, boolean> = {}) => {
    outText.length = 0;
    errText.length = 0;
    const code = await queueCommand(config, verb, args, opts, out);
    return { code, stdout: outText.join(''), stderr: errText.join('') };
  };
  try {
    const a = await t.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example'], { receivedAt: new Date(clock.now()) }), message('Report'));
    await waitFor(() => agent.batches.length === 1, 'first attempt');
    await t.whenIdle();

    const list = await run('list', [], { json: true });
    assert.equal(list.code, 0);
    const queues = JSON.parse(list.stdout) as { identity: string; messageCount: number; deliveryType: string }[];
    const q = queues.find((x) => x.identity === 'tailspin.example');
    assert.equal(q?.messageCount, 1);
    assert.equal(q?.deliveryType, 'DnsConnectorDelivery');
    assert.match((await run('list')).stdout, /tailspin\.example\s+DnsConnectorDelivery/);

    const msgs = await run('messages', ['tailspin.example']);
    assert.match(msgs.stdout, new RegExp(`${a.id}\\s+ann@fabrikam\\.example\\s+Retry`));

    assert.equal((await run('suspend', [a.id])).code, 0);
    assert.equal(t.getMessage(a.id).status, 'Suspended');

    const exp = await run('export', [a.id]);
    assert.equal(exp.code, 0);
    assert.match(exp.stdout, /^X-Sender: <ann@fabrikam\.example> BODY=8BITMIME\r\nX-Receiver: <x@tailspin\.example>\r\n/);
    assert.match(exp.stdout, /Subject: Report/);

    assert.equal((await run('resume', [a.id])).code, 0);
    assert.equal((await run('retry', ['tailspin.example'])).code, 0);
    await waitFor(() => agent.batches.length === 2, 'retry now');
    await t.whenIdle();

    const missing = await run('suspend', ['NOPE']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no (message|queue)/);

    assert.equal((await run('remove', [a.id], { ndr: true })).code, 0);
    await waitFor(() => agent.batches.some((b) => b.mailFrom === null && /QUEUE\.Admin/.test(b.body)), 'NDR after remove --ndr');
    assert.equal(t.listMessages().filter((m) => m.id === a.id).length, 0);

    const health = await fetch(`http://127.0.0.1:${admin.port}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, 'ok');
  } finally {
    await admin.close();
    await t.stop(100);
    await cleanup();
  }
  const down = await queueCommand(config, 'list', [], {}, out);
  assert.equal(down, 1);
});

test('the admin endpoint refuses a non-loopback address unless allowed', async () => {
  await assert.rejects(
    startAdminServer({ listen: '0.0.0.0:0', allowNonLoopback: false, queue: {} as never, logger }),
    /not a loopback address/,
  );
});
