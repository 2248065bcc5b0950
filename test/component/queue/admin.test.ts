import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transport } from '../../../src/queue/manager.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { startAdminServer } from '../../../src/admin/server.js';
import { queueCommand } from '../../../src/cli/queue.js';
import { CaptureTracking, OK, RecordingAgent, TEMP, logger, makeConfig, message, request, tempDir, waitFor } from './helpers.js';

/** The admin endpoint over a Transport, and `mailyard queue VERB` run against it with its output captured. */
async function queueCli(t: Transport, dir: string) {
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
  return { admin, config, out, run };
}

test('queue verbs through the admin endpoint: list, messages, suspend, resume, export, remove --ndr, retry', async () => {
  const { dir, cleanup } = await tempDir();
  const clock = new FakeClock();
  const agent = new RecordingAgent((rcpt, batch) => (batch.envelope.mailFrom === null ? OK : TEMP));
  const tracking = new CaptureTracking();
  const t = new Transport({ config: makeConfig(dir), logger, tracking, clock, agents: agent.factory });
  await t.start();
  const { admin, config, out, run } = await queueCli(t, dir);
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

test('queue suspend/resume by queue name through the CLI: Submission, Unreachable, a delivery queue', async () => {
  const { dir, cleanup } = await tempDir();
  const clock = new FakeClock();
  const agent = new RecordingAgent((rcpt) => (rcpt.endsWith('@tailspin.example') ? TEMP : OK));
  const t = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), clock, agents: agent.factory });
  await t.start();
  const { admin, config, out, run } = await queueCli(t, dir);
  const status = async (identity: string) => {
    const list = JSON.parse((await run('list', [], { json: true })).stdout) as { identity: string; status: string; messageCount: number }[];
    return list.find((q) => q.identity === identity);
  };
  try {
    const sus = await run('suspend', ['Submission']);
    assert.equal(sus.code, 0, sus.stderr);
    assert.match(sus.stdout, /suspended: Submission/);
    await t.intake.accept(request('ann@fabrikam.example', ['bob@contoso.com'], { receivedAt: new Date(clock.now()) }), message());
    await t.whenIdle();
    assert.equal(agent.batches.length, 0);
    assert.deepEqual(await status('Submission'), { identity: 'Submission', deliveryType: 'Undefined', nextHopDomain: 'Submission', connector: null, status: 'Suspended', messageCount: 1, activeCount: 0 });
    assert.match((await run('resume', ['EX01\\Submission'])).stdout, /resumed: Submission/);
    await waitFor(() => agent.deliveredTo('bob@contoso.com').length === 1, 'delivery after resuming Submission');
    assert.equal((await status('Submission'))?.status, 'Ready');

    assert.equal((await run('suspend', ['Unreachable'])).code, 0);
    assert.equal((await status('Unreachable'))?.status, 'Suspended');
    assert.equal((await run('resume', ['Unreachable'])).code, 0);
    assert.equal((await status('Unreachable'))?.status, 'Ready');

    await t.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example'], { receivedAt: new Date(clock.now()) }), message());
    await waitFor(() => agent.deliveredTo('x@tailspin.example').length === 1, 'first attempt to tailspin');
    await t.whenIdle();
    assert.equal((await run('suspend', ['tailspin.example'])).code, 0);
    assert.equal((await status('tailspin.example'))?.status, 'Suspended');
    assert.equal((await run('resume', ['tailspin.example'])).code, 0);
    assert.notEqual((await status('tailspin.example'))?.status, 'Suspended');

    const poison = await run('suspend', ['Poison']);
    assert.equal(poison.code, 1);
    assert.match(poison.stderr, /Poison/);
  } finally {
    await admin.close();
    await t.stop(100);
    await cleanup();
  }
});

test('the admin endpoint refuses a non-loopback address unless allowed', async () => {
  await assert.rejects(
    startAdminServer({ listen: '0.0.0.0:0', allowNonLoopback: false, queue: {} as never, logger }),
    /not a loopback address/,
  );
});
