/**
 * A journalled message bound for an agent that reads files (mailbox, drop directory, LMTP, HTTP)
 * gets its content file just before delivery. When that write fails, its recipients are deferred
 * with the reason, the agent is not called with a file that is not there, and the next attempt
 * delivers the same bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transport } from '../../../src/queue/manager.js';
import { CaptureTracking, RecordingAgent, logger, makeConfig, message, request, tempDir, waitFor } from './helpers.js';

test('a content file that cannot be written defers the recipients with the reason; the retry delivers', async () => {
  const { dir, cleanup } = await tempDir();
  const agent = new RecordingAgent();
  const t = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), agents: agent.factory });
  await t.start();
  const messagesDir = join(dir, 'queue', 'v1', 'messages');
  try {
    // messages/ is replaced by a plain file: the journal takes the message, its file cannot be made.
    await rename(messagesDir, `${messagesDir}.away`);
    await writeFile(messagesDir, 'not a directory');
    const a = await t.intake.accept(request('ann@fabrikam.example', ['x@tailspin.example']), message('Kept'));
    await waitFor(() => t.getMessage(a.id).recipients[0]?.lastError !== undefined, 'the first attempt');
    const r = t.getMessage(a.id).recipients[0]!;
    assert.equal(r.status, 'pending');
    assert.match(r.lastError!, /^451 4\.4\.0 could not write the content file: ENOTDIR/);
    assert.equal(agent.batches.length, 0, 'the agent was not handed a message without its file');

    await rm(messagesDir);
    await rename(`${messagesDir}.away`, messagesDir);
    t.retryQueue('tailspin.example');
    await waitFor(() => agent.batches.length === 1, 'the retry');
    assert.match(agent.batches[0]!.body, /Subject: Kept/);
  } finally {
    await t.stop(0);
    await mkdir(messagesDir, { recursive: true }).catch(() => {});
    await cleanup();
  }
});
