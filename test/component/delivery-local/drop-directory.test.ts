import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createDropDirectoryAgent } from '../../../src/delivery/drop-directory.js';
import { captureLogger, MESSAGE, spooled, tempDir } from './support.js';

describe('Foreign connector drop directory', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('drop')));
  after(() => cleanup());

  test('writes <id>-1.eml: X-Sender, one X-Receiver per recipient, the message without organization headers', async () => {
    const drop = join(dir, 'fax');
    await mkdir(drop);
    const agent = createDropDirectoryAgent({ connector: { name: 'Fax', dropDirectory: drop, dropDirectoryQuota: Infinity }, logger: captureLogger().logger });
    const batch = await spooled(dir, MESSAGE, ['fax:+15551234@fax', 'mary@contoso.com'], { ret: 'HDRS' });
    const result = await agent.deliver(batch, new AbortController().signal);
    assert.deepEqual([...result.outcomes.values()].map((o) => o.kind), ['delivered', 'delivered']);
    const files = await readdir(drop);
    assert.deepEqual(files, [`${batch.messageId}-1.eml`]);
    const text = await readFile(join(drop, files[0]!), 'utf8');
    assert.equal(
      text,
      'X-Sender: <ann@fabrikam.com> RET=HDRS\r\nX-Receiver: <fax:+15551234@fax>\r\nX-Receiver: <mary@contoso.com>\r\n' +
        'From: Ann <ann@fabrikam.com>\r\nTo: bob@contoso.com\r\nSubject: Hello\r\nReceived: from a by b; Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nLine one\r\n.dot line\r\n\r\nLast line\r\n',
    );

    // The same message again (another batch) gets the next free name and never overwrites.
    await agent.deliver(batch, new AbortController().signal);
    assert.deepEqual((await readdir(drop)).sort(), [`${batch.messageId}-1.eml`, `${batch.messageId}-2.eml`]);
  });

  test('a reached quota defers and writes nothing; freeing space lets the retry through', async () => {
    const drop = join(dir, 'quota');
    await mkdir(drop);
    await writeFile(join(drop, 'waiting.eml'), 'x'.repeat(900));
    const agent = createDropDirectoryAgent({ connector: { name: 'Q', dropDirectory: drop, dropDirectoryQuota: 1000 }, logger: captureLogger().logger });
    const batch = await spooled(dir);
    const result = await agent.deliver(batch, new AbortController().signal);
    const o = result.outcomes.get('bob@contoso.com');
    assert.equal(o?.kind, 'deferred');
    if (o?.kind === 'deferred') assert.equal(o.reply?.enhanced, '4.3.1');
    assert.deepEqual(await readdir(drop), ['waiting.eml']);

    await writeFile(join(drop, 'waiting.eml'), '');
    const again = await agent.deliver(batch, new AbortController().signal);
    assert.equal(again.outcomes.get('bob@contoso.com')?.kind, 'delivered');
  });

  test('a missing drop directory defers (it is not created) and leaves no temp file', async () => {
    const drop = join(dir, 'missing');
    const { logger, lines } = captureLogger();
    const agent = createDropDirectoryAgent({ connector: { name: 'M', dropDirectory: drop, dropDirectoryQuota: Infinity }, logger });
    const result = await agent.deliver(await spooled(dir), new AbortController().signal);
    const o = result.outcomes.get('bob@contoso.com');
    assert.equal(o?.kind, 'deferred');
    assert.ok(lines().some((l) => String(l.msg).includes('deferred')));
  });

  test('an unusable path (a file, not a directory) defers', async () => {
    const drop = join(dir, 'plainfile');
    await writeFile(drop, '');
    const agent = createDropDirectoryAgent({ connector: { name: 'F', dropDirectory: drop, dropDirectoryQuota: Infinity }, logger: captureLogger().logger });
    const result = await agent.deliver(await spooled(dir), new AbortController().signal);
    assert.equal(result.outcomes.get('bob@contoso.com')?.kind, 'deferred');
  });

  test('relayDsnRequired marks the deliveries as relayed (a relay DSN is due)', async () => {
    const drop = join(dir, 'relay');
    await mkdir(drop);
    const agent = createDropDirectoryAgent({ connector: { name: 'R', dropDirectory: drop, dropDirectoryQuota: Infinity, relayDsnRequired: true }, logger: captureLogger().logger });
    const result = await agent.deliver(await spooled(dir), new AbortController().signal);
    const o = result.outcomes.get('bob@contoso.com');
    assert.equal(o?.kind, 'delivered');
    assert.equal(o?.kind === 'delivered' && o.relayed, true);
  });
});
