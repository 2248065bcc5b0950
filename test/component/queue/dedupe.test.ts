import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Transport } from '../../../src/queue/manager.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { CaptureTracking, OK, RecordingAgent, TEMP, logger, makeConfig, message, request, tempDir, waitFor } from './helpers.js';

describe('Transport dedupe keys', () => {
  test('a queued message is found by its key, also after a restart; other keys and key-less mail are not', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const clock = new FakeClock();
      const t1 = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), clock, agents: new RecordingAgent(() => TEMP).factory });
      await t1.start();
      await t1.intake.accept(request('ann@fabrikam.example', ['a@tailspin.example'], { receivedAt: new Date(clock.now()), dedupeKey: 'pickup:aaaa' }), message());
      await t1.intake.accept(request('ann@fabrikam.example', ['b@tailspin.example'], { receivedAt: new Date(clock.now()) }), message());
      assert.equal(t1.hasDedupeKey('pickup:aaaa'), true);
      assert.equal(t1.hasDedupeKey('pickup:bbbb'), false);
      await t1.whenIdle();
      await t1.stop(100);

      const t2 = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), clock, agents: new RecordingAgent(() => TEMP).factory });
      await t2.start();
      try {
        assert.equal(t2.messageIds().length, 2);
        assert.equal(t2.hasDedupeKey('pickup:aaaa'), true, 'index rebuilt from the spooled records');
        assert.equal(t2.hasDedupeKey('pickup:bbbb'), false);
        const id = t2.messageIds().find((m) => t2.getMessage(m).recipients.some((r) => r.address === 'a@tailspin.example'));
        assert.ok(id);
        await t2.remove(id, { ndr: false });
        await waitFor(() => !t2.messageIds().includes(id), 'the removal');
        assert.equal(t2.hasDedupeKey('pickup:aaaa'), false, 'key forgotten once the message left the queue');
      } finally {
        await t2.stop(100);
      }
    } finally {
      await cleanup();
    }
  });

  test('the key is forgotten when the message is delivered', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const agent = new RecordingAgent(() => OK);
      const t = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), clock: new FakeClock(), agents: agent.factory });
      await t.start();
      try {
        await t.intake.accept(request('ann@fabrikam.example', ['a@tailspin.example'], { dedupeKey: 'replay:cccc' }), message());
        await waitFor(() => agent.batches.length === 1, 'the delivery');
        await waitFor(() => t.messageIds().length === 0, 'the message to leave the queue');
        assert.equal(t.hasDedupeKey('replay:cccc'), false);
      } finally {
        await t.stop(100);
      }
    } finally {
      await cleanup();
    }
  });
});
