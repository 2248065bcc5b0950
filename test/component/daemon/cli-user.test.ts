/**
 * `mailyard user add|passwd|remove` as an administrator types them, through the real command:
 * the users file (and its folder) is created on first use and holds only a salted hash.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir, writeConfig } from '../../helpers/daemon.js';

const tmp = tempDir();
after(() => tmp.cleanup());

test('user add creates the users file in a folder that does not exist yet, storing no password', () => {
  const usersFile = join(tmp.path, 'not-yet', 'users.yaml');
  const cfg = writeConfig(tmp.path, `server: { name: CLI01, dataDir: ${tmp.path}/spool, logDir: ${tmp.path}/log }\nusers: { file: ${usersFile} }\n`);
  const add = runCli(['user', 'add', 'alice@example.test', '--password-stdin', '--config', cfg], { input: 'correct horse\n' });
  assert.equal(add.code, 0, add.stderr);
  const text = readFileSync(usersFile, 'utf8');
  assert.match(text, /alice@example\.test/);
  assert.doesNotMatch(text, /correct horse/);

  const again = runCli(['user', 'add', 'alice@example.test', '--password-stdin', '--config', cfg], { input: 'x\n' });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /alice@example\.test/);

  const rm = runCli(['user', 'remove', 'alice@example.test', '--config', cfg]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.doesNotMatch(readFileSync(usersFile, 'utf8'), /alice@example\.test/);
});
