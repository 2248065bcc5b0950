import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InflightJournal } from '../../../src/queue/inflight.js';
import { tempDir } from './helpers.js';

test('the in-flight journal writes the noted openings in one go and a restart finds the unfinished ones', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const j = new InflightJournal(dir);
    j.opening('A');
    j.opening('B');
    assert.deepEqual(readdirSync(dir), [], 'nothing is written before flushOpenings');
    j.flushOpenings();
    const [file] = readdirSync(dir);
    assert.equal(readFileSync(join(dir, file!), 'latin1'), 'S A\nS B\n');
    j.end('A');
    j.opening('C');
    j.flushOpenings();
    // The "E" line held back goes out with the next openings, in order.
    assert.equal(readFileSync(join(dir, file!), 'latin1'), 'S A\nS B\nE A\nS C\n');
    // As after a crash: a new journal over the same folder.
    const crashed = new InflightJournal(dir).recover();
    assert.deepEqual([...crashed].sort(), ['B', 'C']);
    assert.deepEqual(readdirSync(dir), [], 'recovered journals are removed');
  } finally {
    await cleanup();
  }
});
