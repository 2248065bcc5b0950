import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createMaildirAgent } from '../../../src/delivery/maildir.js';
import { captureLogger, spooled, tempDir } from './support.js';

describe('Maildir delivery', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('maildir')));
  after(() => cleanup());

  test('writes one complete file into new/ with Return-Path and Delivered-To on top', async () => {
    const root = join(dir, 'a', 'mail');
    const agent = createMaildirAgent({ template: `${root}/{domain}/{local}`, logger: captureLogger().logger, hostname: 'mx1' });
    const batch = await spooled(dir, undefined, ['Bob@Contoso.com']);
    const result = await agent.deliver(batch, new AbortController().signal);
    const o = result.outcomes.get('Bob@Contoso.com');
    assert.equal(o?.kind, 'delivered');

    const mbox = join(root, 'contoso.com', 'bob');
    for (const sub of ['cur', 'new', 'tmp']) assert.ok((await stat(join(mbox, sub))).isDirectory(), `${sub}/ exists`);
    assert.deepEqual(await readdir(join(mbox, 'tmp')), [], 'nothing left in tmp/');
    const files = await readdir(join(mbox, 'new'));
    assert.equal(files.length, 1);
    const name = files[0]!;
    assert.match(name, /^\d+\.M\d+P\d+Q\d+\.mx1,S=\d+,W=\d+$/);
    const content = await readFile(join(mbox, 'new', name), 'utf8');
    assert.ok(content.startsWith('Return-Path: <ann@fabrikam.com>\nDelivered-To: Bob@Contoso.com\nFrom: Ann <ann@fabrikam.com>\n'), content.slice(0, 120));
    assert.ok(!content.includes('\r'), 'Maildir files use LF line ends');
    assert.ok(content.endsWith('\n.dot line\n\nLast line\n'), 'body kept, not dot-stuffed');
    const size = Number(/,S=(\d+)/.exec(name)![1]);
    assert.equal(size, (await stat(join(mbox, 'new', name))).size, 'S= is the size on disk');
    const lines = content.split('\n').length - 1;
    assert.equal(Number(/,W=(\d+)/.exec(name)![1]), size + lines, 'W= is the size with CRLF line ends');
  });

  test('+detail lands in the same mailbox; the null sender is Return-Path: <>', async () => {
    const root = join(dir, 'b');
    const agent = createMaildirAgent({ template: `${root}/{domain}/{local}`, logger: captureLogger().logger });
    const batch = await spooled(dir, undefined, ['bob@contoso.com', 'bob+lists@contoso.com'], { mailFrom: null });
    const result = await agent.deliver(batch, new AbortController().signal);
    assert.deepEqual([...result.outcomes.values()].map((o) => o.kind), ['delivered', 'delivered']);
    const files = await readdir(join(root, 'contoso.com', 'bob', 'new'));
    assert.equal(files.length, 2);
    const texts = await Promise.all(files.map((f) => readFile(join(root, 'contoso.com', 'bob', 'new', f), 'utf8')));
    assert.ok(texts.every((t) => t.startsWith('Return-Path: <>\n')));
    assert.deepEqual(texts.map((t) => /Delivered-To: (.*)\n/.exec(t)![1]).sort(), ['bob+lists@contoso.com', 'bob@contoso.com']);
  });

  test('path tricks fail with 5.1.3 and write nothing outside the root', async () => {
    const root = join(dir, 'c', 'root');
    const agent = createMaildirAgent({ template: `${root}/{domain}/{local}`, logger: captureLogger().logger });
    const evil = ['../../escape@contoso.com', 'a/b@contoso.com', 'x@../../escape2', `${'z'.repeat(65)}@contoso.com`, 'nul\u0000@contoso.com'];
    const batch = await spooled(dir, undefined, [...evil, 'ok@contoso.com']);
    const result = await agent.deliver(batch, new AbortController().signal);
    for (const a of evil) {
      const o = result.outcomes.get(a);
      assert.equal(o?.kind, 'failed', a);
      if (o?.kind === 'failed') assert.equal(o.reply.enhanced, '5.1.3');
    }
    assert.equal(result.outcomes.get('ok@contoso.com')?.kind, 'delivered');
    assert.deepEqual(await readdir(join(dir, 'c')), ['root']);
    assert.deepEqual(await readdir(root), ['contoso.com']);
    assert.deepEqual(await readdir(join(root, 'contoso.com')), ['ok']);
  });

  test('a root that cannot hold directories defers (4.x.x), never fails', async () => {
    const root = join(dir, 'd');
    await writeFile(root, 'not a directory');
    const agent = createMaildirAgent({ template: `${root}/{domain}/{local}`, logger: captureLogger().logger });
    const result = await agent.deliver(await spooled(dir, undefined, ['new@contoso.org']), new AbortController().signal);
    const o = result.outcomes.get('new@contoso.org');
    assert.equal(o?.kind, 'deferred');
    if (o?.kind === 'deferred') {
      assert.equal(o.reply?.code, 451);
      assert.equal(o.category, 'local-io');
    }
  });
});

describe('Maildir loop detection', () => {
  test('a message already delivered to the same recipient fails with 5.4.6; others still get it', async () => {
    const { dir, cleanup } = await tempDir('maildir-loop');
    try {
      const agent = createMaildirAgent({ template: `${dir}/m/{domain}/{local}`, logger: captureLogger().logger });
      const looped = 'Delivered-To: Bob@contoso.com\r\nFrom: a@b.c\r\nTo: bob@contoso.com\r\n\r\nx\r\n';
      const result = await agent.deliver(await spooled(dir, looped, ['bob@contoso.com', 'ann@contoso.com']), new AbortController().signal);
      const bob = result.outcomes.get('bob@contoso.com');
      assert.equal(bob?.kind, 'failed');
      if (bob?.kind === 'failed') assert.equal(bob.reply.enhanced, '5.4.6');
      assert.equal(result.outcomes.get('ann@contoso.com')?.kind, 'delivered');
      assert.deepEqual(await readdir(join(dir, 'm', 'contoso.com')), ['ann']);
    } finally {
      await cleanup();
    }
  });
});
