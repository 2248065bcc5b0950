/** Suspend-Queue / Resume-Queue survive a restart: delivery queues, Submission and Unreachable, on a real spool. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transport } from '../../../src/queue/manager.js';
import { FakeClock } from '../../../src/platform/clock.js';
import type { Config } from '../../../src/config/defaults.js';
import { CaptureTracking, RecordingAgent, TEMP, logger, makeConfig, message, request, tempDir, waitFor } from './helpers.js';

function transport(config: Config, clock: FakeClock, agent: RecordingAgent): Transport {
  return new Transport({ config, logger, tracking: new CaptureTracking(), clock, agents: agent.factory });
}

const stateFile = (dir: string) => join(dir, 'queue', 'v1', 'suspended-queues.json');

test('a suspended delivery queue is still suspended after a restart; resume delivers', async () => {
  const { dir, cleanup } = await tempDir();
  const clock = new FakeClock();
  const config = makeConfig(dir);
  const first = new RecordingAgent(() => TEMP);
  const t1 = transport(config, clock, first);
  let t2: Transport | undefined;
  try {
    await t1.start();
    const a = await t1.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example'], { receivedAt: new Date(clock.now()) }), message('Held'));
    await waitFor(() => first.batches.length === 1, 'first attempt (deferred)');
    await t1.whenIdle();
    assert.deepEqual(await t1.suspend('tailspin.example'), { suspended: 'tailspin.example' });
    assert.equal(t1.listQueues().find((q) => q.identity === 'tailspin.example')?.status, 'Suspended');
    assert.match(await readFile(stateFile(dir), 'utf8'), /"nextHopDomain": "tailspin\.example"/);
    await t1.stop(100);

    const second = new RecordingAgent();
    t2 = transport(config, clock, second);
    await t2.start();
    clock.advance(30 * 60_000); // well past the retry time
    await t2.whenIdle();
    assert.equal(second.batches.length, 0, 'nothing leaves a suspended queue after the restart');
    const q = t2.listQueues().find((x) => x.identity === 'tailspin.example');
    assert.equal(q?.status, 'Suspended');
    assert.equal(q?.messageCount, 1);

    assert.deepEqual(await t2.resume('tailspin.example'), { resumed: 'tailspin.example' });
    await waitFor(() => second.deliveredTo('x@tailspin.example').length === 1, 'delivery after resume');
    assert.equal(second.batches[0]?.messageId, a.id);
    await t2.whenIdle();
    assert.doesNotMatch(await readFile(stateFile(dir), 'utf8'), /tailspin/);
  } finally {
    await t2?.stop(100);
    await cleanup();
  }
});

test('a delivery queue named in the file but absent at start-up comes up suspended with its first message', async () => {
  const { dir, cleanup } = await tempDir();
  const clock = new FakeClock();
  await mkdir(join(dir, 'queue', 'v1'), { recursive: true });
  await writeFile(
    stateFile(dir),
    JSON.stringify({ v: 1, submission: false, unreachable: false, queues: [{ deliveryType: 'DnsConnectorDelivery', nextHopDomain: 'tailspin.example', connector: 'To Internet' }] }),
  );
  const agent = new RecordingAgent();
  const t = transport(makeConfig(dir), clock, agent);
  try {
    await t.start();
    await t.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example', 'y@fabrikam.example'], { receivedAt: new Date(clock.now()) }), message());
    await waitFor(() => agent.deliveredTo('y@fabrikam.example').length === 1, 'the other queue still flows');
    await t.whenIdle();
    assert.equal(agent.deliveredTo('x@tailspin.example').length, 0);
    assert.equal(t.listQueues().find((q) => q.identity === 'tailspin.example')?.status, 'Suspended');
    await t.resume('tailspin.example');
    await waitFor(() => agent.deliveredTo('x@tailspin.example').length === 1, 'delivery after resume');
  } finally {
    await t.stop(100);
    await cleanup();
  }
});

test('a suspended Submission queue accepts and stores but does not deliver, across a restart; resume delivers all', async () => {
  const { dir, cleanup } = await tempDir();
  const clock = new FakeClock();
  const config = makeConfig(dir);
  const first = new RecordingAgent();
  const t1 = transport(config, clock, first);
  let t2: Transport | undefined;
  try {
    await t1.start();
    await t1.suspend('Submission');
    const ids: string[] = [];
    for (const rcpt of ['x@tailspin.example', 'bob@contoso.com', 'y@fabrikam.example']) {
      ids.push((await t1.intake.accept(request('ann@fabrikam.example', [rcpt], { receivedAt: new Date(clock.now()) }), message())).id);
    }
    await t1.whenIdle();
    assert.equal(first.batches.length, 0, 'nothing categorized or delivered while Submission is suspended');
    const sub = t1.listQueues().find((q) => q.identity === 'Submission');
    assert.deepEqual([sub?.status, sub?.messageCount], ['Suspended', 3]);
    assert.deepEqual(t1.listMessages('Submission').map((m) => m.id).sort(), [...ids].sort());
    await t1.stop(100);

    const second = new RecordingAgent();
    t2 = transport(config, clock, second);
    await t2.start();
    await t2.whenIdle();
    assert.equal(second.batches.length, 0, 'still held after the restart');
    assert.equal(t2.listQueues().find((q) => q.identity === 'Submission')?.status, 'Suspended');

    await t2.resume('Submission');
    await waitFor(() => ['x@tailspin.example', 'bob@contoso.com', 'y@fabrikam.example'].every((r) => second.deliveredTo(r).length === 1), 'all three delivered after resume');
    await t2.whenIdle();
    assert.deepEqual(second.batches.map((b) => b.messageId).sort(), [...ids].sort());
    assert.equal(t2.listQueues().find((q) => q.identity === 'Submission')?.status, 'Ready');
  } finally {
    await t2?.stop(100);
    await cleanup();
  }
});

test('a suspended Unreachable queue is not resubmitted on reload, even after a restart', async () => {
  const { dir, cleanup } = await tempDir();
  const clock = new FakeClock();
  const noRoute = makeConfig(dir, { sendConnectors: [] });
  const withRoute = makeConfig(dir);
  const agent = new RecordingAgent();
  const t1 = transport(noRoute, clock, agent);
  let t2: Transport | undefined;
  try {
    await t1.start();
    await t1.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example'], { receivedAt: new Date(clock.now()) }), message());
    await t1.whenIdle();
    assert.equal(t1.listQueues().find((q) => q.identity === 'Unreachable')?.messageCount, 1);
    await t1.suspend('Unreachable');
    await t1.stop(100);

    t2 = transport(noRoute, clock, agent);
    await t2.start();
    t2.reload(withRoute);
    await t2.whenIdle();
    assert.equal(agent.batches.length, 0, 'reload did not resubmit the suspended Unreachable queue');
    const u = t2.listQueues().find((q) => q.identity === 'Unreachable');
    assert.deepEqual([u?.status, u?.messageCount], ['Suspended', 1]);

    await t2.resume('Unreachable');
    await waitFor(() => agent.deliveredTo('x@tailspin.example').length === 1, 'delivered once Unreachable is resumed');
  } finally {
    await t2?.stop(100);
    await cleanup();
  }
});
