import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Transport } from '../../../src/queue/manager.js';
import { CaptureTracking, OK, RecordingAgent, logger, makeConfig, tempDir, waitFor } from './helpers.js';

const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

test('kill -9 while accepting loses no acknowledged message; a new Transport on the same spool delivers them all', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const acked: string[] = [];
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    proc.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('ACK ')) acked.push(line.slice(4));
      }
    });
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    try {
      await waitFor(() => acked.length >= 40, 'the child to acknowledge 40 messages', 20_000);
    } finally {
      proc.kill('SIGKILL');
      await exited;
    }
    const agent = new RecordingAgent(() => OK);
    const t = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), agents: agent.factory });
    await t.start();
    try {
      const queued = new Set<string>(t.messageIds());
      const missing = acked.filter((id) => !queued.has(id));
      assert.deepEqual(missing, [], 'every acknowledged message is in the queue after the crash');
      await waitFor(() => acked.every((id) => agent.batches.filter((b) => b.messageId === id).length === 2), 'every acknowledged message delivered to both next hops', 20_000);
      for (const id of acked.slice(0, 5)) {
        const b = agent.batches.find((x) => x.messageId === id)!;
        assert.match(b.body, /^From: Ann/);
      }
    } finally {
      await t.stop(500);
    }
  } finally {
    await cleanup();
  }
});
