import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MessageTrackingLog, TRACKING_FIELDS, formatTrackingEvent } from '../../../src/logging/tracking.js';
import type { TrackingEvent } from '../../../src/model/tracking.js';
import { searchTracking, trackingSearchCommand } from '../../../src/logging/tracking-search.js';
import { Transport } from '../../../src/queue/manager.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { OK, PERM, RecordingAgent, logger, makeConfig, message, request, tempDir, waitFor } from './helpers.js';

test('queue events land in MSGTRK files in Exchange layout and tracking search finds them', async () => {
  const { dir, cleanup } = await tempDir();
  const clock = new FakeClock();
  const trackDir = join(dir, 'logs', 'MessageTracking');
  const log = new MessageTrackingLog({ dir: trackDir, enabled: true, maxFileSize: 10 * 1024 * 1024, maxAgeMs: 30 * 86_400_000, maxDirectorySize: 1e9, logger, now: () => new Date(clock.now()) });
  const agent = new RecordingAgent((rcpt, batch) => (batch.envelope.mailFrom === null || rcpt.startsWith('ok') ? OK : PERM));
  const t = new Transport({ config: makeConfig(dir), logger, tracking: log, clock, agents: agent.factory });
  await t.start();
  try {
    const res = await t.intake.accept(request('ann@fabrikam.example', ['ok@tailspin.example', 'bad@tailspin.example'], { receivedAt: new Date(clock.now()) }), message('Tracked, "quoted" subject'));
    await waitFor(() => agent.batches.some((b) => b.mailFrom === null), 'NDR delivered');
    await t.whenIdle();
    log.flush();
    const files = await readdir(trackDir);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^MSGTRK2026010509-1\.LOG$/);
    const raw = await readFile(join(trackDir, files[0]!));
    assert.deepEqual([...raw.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 BOM');
    const text = raw.toString('utf8');
    assert.match(text, /#Log-type: Message Tracking Log\r\n/);
    assert.ok(text.includes(`#Fields: ${TRACKING_FIELDS.join(',')}\r\n`));
    assert.match(text, /,SMTP,RECEIVE,/);
    assert.match(text, /"Tracked, ""quoted"" subject"/);

    const fails = await searchTracking(trackDir, { eventId: 'FAIL', recipient: 'BAD@tailspin.example' });
    assert.equal(fails.length, 1);
    assert.equal(fails[0]!.InternalMessageId, res.id);
    assert.deepEqual(fails[0]!.RecipientStatus, ['550 5.1.1 User unknown']);
    const all = await searchTracking(trackDir, { messageId: res.id });
    assert.deepEqual(all.map((r) => r.EventId), ['RECEIVE', 'RESOLVE', 'SEND', 'FAIL', 'DSN']);
    assert.equal((await searchTracking(trackDir, { sender: 'ann@fabrikam.example', start: new Date(clock.now() + 1) })).length, 0);

    const out: string[] = [];
    const code = await trackingSearchCommand({ server: { logDir: join(dir, 'logs') } }, { event: 'DSN', json: true }, { stdout: (s) => out.push(s), stderr: (s) => out.push(s) });
    assert.equal(code, 0);
    const rows = JSON.parse(out.join('')) as { EventId: string; RelatedRecipientAddress: string }[];
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.RelatedRecipientAddress, 'ann@fabrikam.example');
  } finally {
    await t.stop(100);
    log.close();
    await cleanup();
  }
});

test('a tracking log file rolls at maxFileSize and no line is lost or split across files', async () => {
  const { dir, cleanup } = await tempDir();
  const trackDir = join(dir, 'MessageTracking');
  const when = new Date(Date.UTC(2026, 0, 5, 9, 30));
  const log = new MessageTrackingLog({ dir: trackDir, enabled: true, maxFileSize: 2048, maxAgeMs: 30 * 86_400_000, maxDirectorySize: 1e9, logger, now: () => when });
  try {
    for (let i = 0; i < 40; i++) {
      log.emit({ timestamp: when, eventId: 'RECEIVE', source: 'SMTP', messageId: `M${String(i).padStart(4, '0')}`, sender: 'ann@fabrikam.example', recipients: [`r${i}@tailspin.example`], subject: `roll ${i}` });
    }
    log.flush();
    const files = (await readdir(trackDir)).sort();
    assert.ok(files.length > 2, `expected several files, got ${files.join(', ')}`);
    const seen: string[] = [];
    for (const f of files) {
      const raw = await readFile(join(trackDir, f));
      assert.ok(raw.length <= 2048, `${f} is ${raw.length} bytes, over maxFileSize`);
      const text = raw.toString('utf8');
      assert.ok(text.startsWith('\ufeff#Software'), `${f} starts with its own header`);
      for (const line of text.split('\r\n')) {
        const m = /,RECEIVE,.*"?roll (\d+)"?/.exec(line);
        if (m) seen.push(m[1]!);
      }
    }
    assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => String(i)));
  } finally {
    log.close();
    await cleanup();
  }
});

test('the tracking log writes exactly the lines formatTrackingEvent gives, across chunks and flushes', async () => {
  const { dir, cleanup } = await tempDir();
  const trackDir = join(dir, 'MessageTracking');
  const when = new Date(Date.UTC(2026, 0, 5, 9, 30));
  const log = new MessageTrackingLog({ dir: trackDir, enabled: true, maxFileSize: 64 * 1024 * 1024, maxAgeMs: 30 * 86_400_000, maxDirectorySize: 1e9, logger, now: () => when });
  const subjects = ['plain', 'a, comma', 'say "hi"', ' leading space', 'two\r\nlines', 'Grüße aus Köln ✉', '😀'.repeat(3000), ''];
  const events: TrackingEvent[] = [];
  for (let i = 0; i < 600; i++) {
    events.push({
      timestamp: when, eventId: i % 2 ? 'SEND' : 'RECEIVE', source: 'SMTP', messageId: `M${i}`,
      sender: i % 7 ? 'ann@fabrikam.example' : '', recipients: i % 3 ? [`r${i}@tailspin.example`] : [`a${i}@x.example`, `b${i}@x.example`],
      recipientStatus: i % 5 ? undefined : ['250 2.0.0 OK', '250 2.0.0 OK'], totalBytes: i * 100, subject: subjects[i % subjects.length]!,
    });
  }
  try {
    for (const [i, e] of events.entries()) {
      log.emit(e);
      if (i === 299) log.flush();
    }
    log.flush();
    const [file] = await readdir(trackDir);
    const text = (await readFile(join(trackDir, file!))).toString('utf8');
    const body = text.slice(text.indexOf('\r\n', text.indexOf('#Fields:')) + 2);
    assert.equal(body, events.map((e) => formatTrackingEvent(e)).join(''));
  } finally {
    log.close();
    await cleanup();
  }
});
