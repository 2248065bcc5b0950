/**
 * Message data split into arbitrary TCP reads: lines that start with a dot, escape dots and the
 * terminator falling across read boundaries must come out exactly unstuffed, whichever path the
 * receive side takes for a chunk (the fast scan for chunks without "LF ." or the library's own).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LineClient } from '../../helpers/smtp-client.js';
import { startHarness, type Harness } from './harness.js';
import { gatheredBytes } from '../../../src/receive/data.js';

/** A small deterministic generator so a failure can be reproduced. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function bodyLines(rand: () => number, count: number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = rand();
    if (r < 0.1) lines.push('.');
    else if (r < 0.2) lines.push(`..double ${i}`);
    else if (r < 0.3) lines.push(`.single ${i}`);
    else if (r < 0.35) lines.push('');
    else lines.push(`line ${i} ${'x'.repeat(Math.floor(rand() * 900))}`);
  }
  return lines;
}

/** What the client must send for these lines (RFC 5321 4.5.2: a leading dot is doubled). */
function stuffed(lines: readonly string[]): string {
  return lines.map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n') + '\r\n.\r\n';
}

/** A session that has just been told 354, with Nagle off so each write leaves as its own segment. */
async function openData(h: Harness): Promise<LineClient> {
  const c = await LineClient.connect(h.port());
  c.socket.setNoDelay(true);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.fabrikam.com')).code, 250);
  assert.equal((await c.cmd('MAIL FROM:<ann@fabrikam.com>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<bob@contoso.com>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  return c;
}

describe('message data in arbitrary pieces', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ connectors: [{ name: 'Internet', usage: 'Internet', maxMessageSize: '10MB' }] });
  });
  after(async () => h.close());

  test('a read that ends just before a line-leading dot (or inside CRLF before it) is unstuffed', async () => {
    const lines = ['first', '..two dots', '.', 'middle', '.one', '...three', 'last'];
    const header = 'From: <ann@fabrikam.com>\r\nSubject: boundaries\r\n\r\n';
    const wire = Buffer.from(header + stuffed(lines), 'latin1');
    // Cut after every LF that precedes a dot, and between CR and LF before every dot.
    const cuts = new Set<number>();
    for (let i = 1; i < wire.length; i++) {
      if (wire[i] === 0x2e && wire[i - 1] === 0x0a) {
        cuts.add(i);
        cuts.add(i - 1);
      }
    }
    const c = await openData(h);
    const before = h.intake.stored.length;
    let from = 0;
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      c.write(wire.subarray(from, cut));
      from = cut;
      await sleep(15);
    }
    c.write(wire.subarray(from));
    const done = await c.read();
    assert.equal(done.code, 250, done.raw);
    const content = h.intake.stored.at(-1)!.content;
    assert.equal(h.intake.stored.length, before + 1);
    assert.equal(content.slice(content.indexOf('\r\n\r\n') + 4), lines.join('\r\n') + '\r\n');
    c.close();
  });

  test('data held while a message arrives is given back when the message ends or the client leaves', async () => {
    const c = await openData(h);
    c.write(Buffer.from('Subject: left halfway\r\n\r\n' + 'x'.repeat(5000) + '\r\n', 'latin1'));
    const deadline = Date.now() + 5000;
    while (gatheredBytes() === 0 && Date.now() < deadline) await sleep(5);
    assert.ok(gatheredBytes() > 5000, 'the partial message is held');
    c.close();
    while (gatheredBytes() !== 0 && Date.now() < deadline) await sleep(5);
    assert.equal(gatheredBytes(), 0);
  });

  test('one large read: dot lines in the middle are unstuffed, and only CRLF . CRLF ends the data', async () => {
    // Big enough to arrive in a few reads, each holding dots well after its start (the path that
    // passes a read on up to its first "LF ." and lets the library take the rest).
    const filler = Array.from({ length: 300 }, (_, i) => `filler ${i} ${'y'.repeat(120)}`);
    const smuggled = 'x\n.\nMAIL FROM:<evil@fabrikam.com>\r\nRCPT TO:<victim@contoso.com>\r\nDATA\r\nspoofed\r\n.\nmore\r\n.\r';
    const lines = [...filler.slice(0, 100), '.dot line', '..two', ...filler.slice(100, 200), smuggled, '.', ...filler.slice(200), 'end'];
    const wire = Buffer.from(`Subject: one read\r\n\r\n${stuffed(lines)}`, 'latin1');
    const c = await openData(h);
    const before = h.intake.stored.length;
    c.write(wire);
    const done = await c.read();
    assert.equal(done.code, 250, done.raw);
    assert.equal(h.intake.stored.length, before + 1, 'exactly one message: nothing was smuggled');
    const content = h.intake.stored.at(-1)!.content;
    const body = content.slice(content.indexOf('\r\n\r\n') + 4);
    assert.ok(body.startsWith(`${filler[0]}\r\n`));
    assert.ok(body.includes(`${filler[99]}\r\n.dot line\r\n..two\r\n${filler[100]}\r\n`), 'escape dots removed once');
    assert.ok(body.includes('MAIL FROM:<evil@fabrikam.com>'), 'the would-be commands stay message text');
    assert.ok(body.includes(`\r\n.\r\n${filler[200]}\r\n`), 'a lone dot line (sent as "..") is content');
    assert.ok(body.endsWith('\r\nend\r\n'));
    assert.equal((await c.cmd('NOOP')).code, 250, 'the session goes on in command mode');
    c.close();
  });

  test('data that starts with an escape dot, or with a lone dot line, is unstuffed at the very start', async () => {
    for (const [first, expected] of [['..starts with a dot', '.starts with a dot'], ['..', '.']] as const) {
      const c = await openData(h);
      c.write(Buffer.from(`${first}\r\nSubject: x\r\n\r\nbody\r\n.\r\n`, 'latin1'));
      assert.equal((await c.read()).code, 250);
      const content = h.intake.stored.at(-1)!.content; // our Received header, then the data
      assert.ok(content.endsWith(`\r\n${expected}\r\nSubject: x\r\n\r\nbody\r\n`), JSON.stringify(content.slice(-60)));
      c.close();
    }
  });

  // 400 lines (~180 KB) reach the Intake as one Buffer; 1,200 lines (~540 KB) as a stream.
  for (const [seed, count] of [[1, 400], [7, 400], [42, 1200]] as const) {
    test(`dots at every kind of boundary are unstuffed exactly once (seed ${seed}, ${count} lines)`, async () => {
      const rand = rng(seed);
      const header = `From: <ann@fabrikam.com>\r\nTo: <bob@contoso.com>\r\nSubject: pieces ${seed}\r\n\r\n`;
      const lines = bodyLines(rand, count);
      const wire = Buffer.from(header + stuffed(lines) + 'QUIT\r\n', 'latin1');
      const c = await openData(h);
      const before = h.intake.stored.length;
      // Pieces of 1 to ~3000 bytes; the last pieces cut the terminator and the pipelined QUIT.
      const tail = wire.length - 12;
      let off = 0;
      let pieces = 0;
      while (off < tail && pieces < 600) {
        const n = Math.min(tail - off, 1 + Math.floor(rand() * (rand() < 0.3 ? 8 : 3000)));
        c.write(wire.subarray(off, off + n));
        off += n;
        pieces++;
        await sleep(1);
      }
      if (off < tail) {
        c.write(wire.subarray(off, tail));
        off = tail;
      }
      while (off < wire.length) {
        c.write(wire.subarray(off, off + 1));
        off += 1;
        await sleep(1);
      }
      const done = await c.read();
      assert.equal(done.code, 250, done.raw);
      assert.equal((await c.read()).code, 221, 'the QUIT pipelined after the terminator is answered');
      assert.equal(h.intake.stored.length, before + 1);
      const content = h.intake.stored.at(-1)!.content;
      const body = content.slice(content.indexOf('\r\n\r\n') + 4);
      assert.equal(body, lines.join('\r\n') + '\r\n');
      assert.equal(gatheredBytes(), 0, 'nothing is held once the message is queued');
      c.close();
    });
  }
});
