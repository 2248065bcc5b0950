import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import type { Config } from '../../../src/config/defaults.js';
import type { Intake, IntakeRequest, IntakeResult } from '../../../src/model/intake.js';
import { PickupService } from '../../../src/pickup/pickup.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { Transport } from '../../../src/queue/manager.js';
import { CaptureTracking, RecordingAgent, TEMP, logger as silent, makeConfig, tempDir, waitFor } from '../queue/helpers.js';
import { captureLogger } from '../delivery-local/support.js';

const FILE = 'From: App <app@contoso.com>\r\nTo: ann@tailspin.example\r\nSubject: Report\r\n\r\nHello\r\n';

function withPickup(dataDir: string): Config {
  return makeConfig(dataDir, { transportService: { pickupDirectoryPath: join(dataDir, 'pickup'), replayDirectoryPath: join(dataDir, 'replay') } });
}

/** Messages are deferred (the fake clock never reaches the retry), so whatever was accepted stays queued. */
function transport(config: Config, clock: FakeClock): Transport {
  return new Transport({ config, logger: silent, tracking: new CaptureTracking(), clock, agents: new RecordingAgent(() => TEMP).factory });
}

async function files(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

describe('Pickup crash window (accepted, .tmp not yet deleted)', () => {
  test('after a restart the leftover .tmp of an accepted message is deleted, and the message is queued once', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const clock = new FakeClock();
      const config = withPickup(dir);
      const pickupDir = config.transportService.pickupDirectoryPath!;
      const saved = join(dir, 'saved');
      await mkdir(saved);
      const t1 = transport(config, clock);
      await t1.start();
      // The "crash": right after the Intake stored the message, before Pickup deletes the .tmp,
      // keep a copy of the in-progress file exactly as it is on disk at that moment.
      let leftover: string | undefined;
      let accepted: IntakeRequest | undefined;
      const crashing: Intake = {
        accept: async (req: IntakeRequest, body: Readable | Buffer): Promise<IntakeResult> => {
          const res = await t1.intake.accept(req, body);
          accepted = req;
          leftover = (await readdir(pickupDir)).find((n) => n.endsWith('.tmp'));
          if (leftover) await copyFile(join(pickupDir, leftover), join(saved, leftover));
          return res;
        },
      };
      const p1 = new PickupService({ config, intake: crashing, logger: silent, tracking: new CaptureTracking(), isQueued: (k) => t1.hasDedupeKey(k) });
      await mkdir(pickupDir, { recursive: true });
      await writeFile(join(pickupDir, 'report.eml'), FILE);
      await p1.pollOnce();
      assert.ok(leftover, 'the file was in progress as a .tmp during accept');
      assert.match(leftover, /^report\.[0-9a-f]{16}\.tmp$/);
      assert.equal(accepted?.dedupeKey, `pickup:${leftover.split('.')[1]}`);
      assert.equal(t1.messageIds().length, 1);
      await t1.whenIdle();
      await t1.stop(100);
      // Disk as the crash left it: the message in the spool and the .tmp still in the pickup directory.
      await copyFile(join(saved, leftover), join(pickupDir, leftover));
      assert.deepEqual(await files(pickupDir), [leftover]);

      const t2 = transport(config, clock);
      await t2.start();
      const cap = captureLogger();
      const p2 = new PickupService({ config, intake: t2.intake, logger: cap.logger, tracking: new CaptureTracking(), intervalMs: 60_000, isQueued: (k) => t2.hasDedupeKey(k) });
      try {
        await p2.start();
        assert.deepEqual(await files(pickupDir), [], 'the .tmp is gone and nothing was put back as .eml');
        await p2.pollOnce();
        await t2.whenIdle();
        assert.equal(t2.messageIds().length, 1, 'the message is queued exactly once');
        const line = cap.lines().find((l) => l.file === leftover);
        assert.match(String(line?.msg), /already accepted/);
      } finally {
        await p2.stop();
        await t2.stop(100);
      }
    } finally {
      await cleanup();
    }
  });

  test('a leftover .tmp whose key is not queued is submitted once', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const clock = new FakeClock();
      const config = withPickup(dir);
      const pickupDir = config.transportService.pickupDirectoryPath!;
      await mkdir(pickupDir, { recursive: true });
      // Crashed after the rename, before (or during) accept: nothing in the spool carries its key.
      const name = 'lost.0123456789abcdef.tmp';
      await writeFile(join(pickupDir, name), FILE);
      const t = transport(config, clock);
      await t.start();
      const cap = captureLogger();
      const p = new PickupService({ config, intake: t.intake, logger: cap.logger, tracking: new CaptureTracking(), intervalMs: 60_000, isQueued: (k) => t.hasDedupeKey(k) });
      try {
        assert.equal(t.hasDedupeKey('pickup:0123456789abcdef'), false);
        await p.start();
        await waitFor(() => t.messageIds().length === 1, 'the resubmission');
        await waitFor(async () => (await files(pickupDir)).length === 0, 'the file to disappear');
        await p.pollOnce();
        await t.whenIdle();
        assert.equal(t.messageIds().length, 1, 'submitted exactly once');
        const info = t.getMessage(t.messageIds()[0]!);
        assert.deepEqual(info.recipients.map((r) => r.address), ['ann@tailspin.example']);
        assert.ok(cap.lines().some((l) => l.file === name && /resubmitting/.test(String(l.msg))));
      } finally {
        await p.stop();
        await t.stop(100);
      }
    } finally {
      await cleanup();
    }
  });
});
