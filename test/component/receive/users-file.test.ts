import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { UsersStore, readUsers } from '../../../src/users/users-file.js';
import { userAdd, userPasswd, userRemove } from '../../../src/cli/user.js';

test('user add / passwd / remove keep only salted hashes and verify logins', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mailyard-users-'));
  try {
    const file = join(dir, 'users.yaml');
    await userAdd(file, 'Ann@Contoso.com', { passwordStdin: true, stdin: Readable.from(['s3cret pass\n']) });
    await userAdd(file, 'bob@contoso.com', { passwordStdin: true, stdin: Readable.from(['other\n']) });
    const text = await readFile(file, 'utf8');
    assert.doesNotMatch(text, /s3cret/);
    assert.match(text, /address: ann@contoso\.com/);
    assert.match(text, /hash: scrypt\$/);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    // two users with the same password would still get different salts
    const users = await readUsers(file);
    assert.equal(users.length, 2);

    const store = new UsersStore(file);
    assert.equal(await store.verify('ANN@contoso.com', 's3cret pass'), true);
    assert.equal(await store.verify('ann@contoso.com', 'wrong'), false);
    assert.equal(await store.verify('nobody@contoso.com', 's3cret pass'), false);

    await assert.rejects(userAdd(file, 'ann@contoso.com', { passwordStdin: true, stdin: Readable.from(['x\n']) }), /already exists/);
    await userPasswd(file, 'ann@contoso.com', { passwordStdin: true, stdin: Readable.from(['new one\n']) });
    assert.equal(await store.verify('ann@contoso.com', 'new one'), true);
    assert.equal(await store.verify('ann@contoso.com', 's3cret pass'), false);

    await userRemove(file, 'ann@contoso.com');
    assert.equal(await store.verify('ann@contoso.com', 'new one'), false);
    await assert.rejects(userRemove(file, 'ann@contoso.com'), /no such user/);
    // no temp files left behind
    assert.deepEqual((await readdir(dir)).sort(), ['users.yaml']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
