import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, beforeEach, describe, test } from 'node:test';
import { parseConfigText, type Config } from '../../../src/config/index.js';
import type { MessageId } from '../../../src/model/ids.js';
import { IntakeError, type Intake, type IntakeRequest, type IntakeResult } from '../../../src/model/intake.js';
import { reply } from '../../../src/model/reply.js';
import type { TrackingEvent } from '../../../src/model/tracking.js';
import { PickupService } from '../../../src/pickup/pickup.js';
import { captureLogger, tempDir, waitFor } from '../delivery-local/support.js';

/** A small Intake that stores each message as a file and remembers the request; it can be told to refuse. */
class RecordingIntake implements Intake {
  readonly calls: { req: IntakeRequest; content: string }[] = [];
  refuse: IntakeError | undefined;
  private n = 0;
  constructor(private readonly dir: string) {}
  async accept(req: IntakeRequest, body: Readable | Buffer): Promise<IntakeResult> {
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(body)) chunks.push(body);
    else for await (const c of body) chunks.push(Buffer.from(c as Buffer));
    if (this.refuse) throw this.refuse;
    const content = (req.prepend ?? '') + Buffer.concat(chunks).toString('utf8');
    const id = `0000000000000000000${++this.n}`.slice(-20) as MessageId;
    await writeFile(join(this.dir, `${id}.eml`), content);
    this.calls.push({ req, content });
    return { id, size: content.length };
  }
}

function configFor(pickup: string, replay: string, extra = ''): Config {
  const r = parseConfigText(
    `server: { fqdn: mx.contoso.com }\ntransportService:\n  pickupDirectoryPath: ${pickup}\n  replayDirectoryPath: ${replay}\n${extra}`,
    'test.yaml',
  );
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

describe('Pickup and Replay directories', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let pickup: string;
  let replay: string;
  let store: string;
  let intake: RecordingIntake;
  let events: TrackingEvent[];
  let n = 0;

  before(async () => ({ dir, cleanup } = await tempDir('pickup')));
  after(() => cleanup());
  beforeEach(async () => {
    n++;
    pickup = join(dir, `pickup${n}`);
    replay = join(dir, `replay${n}`);
    store = join(dir, `store${n}`);
    await mkdir(store);
    await mkdir(pickup);
    intake = new RecordingIntake(store);
    events = [];
  });

  const service = (config: Config = configFor(pickup, replay), logger = captureLogger().logger) =>
    new PickupService({ config, intake, logger, tracking: { emit: (e) => events.push(e) }, intervalMs: 50 });

  test('a dropped .eml is submitted with the envelope from its headers, Bcc removed, and the file disappears', async () => {
    const svc = service();
    await svc.start();
    try {
      await writeFile(
        join(pickup, 'note.eml'),
        'From: App <app@contoso.com>\r\nTo: ann@fabrikam.com\r\nCc: bob@fabrikam.com\r\nBcc: audit@contoso.com\r\nReceived: from somewhere\r\nSubject: Report\r\n\r\nHello\r\n',
      );
      await waitFor(() => intake.calls.length === 1 || undefined, 'the intake call');
      await waitFor(async () => ((await readdir(pickup)).length === 0 ? true : undefined), 'the file to disappear');
    } finally {
      await svc.stop();
    }
    const { req, content } = intake.calls[0]!;
    assert.equal(req.source.kind, 'pickup');
    assert.equal(req.envelope.mailFrom, 'app@contoso.com');
    assert.deepEqual(req.envelope.recipients.map((r) => r.address), ['ann@fabrikam.com', 'bob@fabrikam.com', 'audit@contoso.com']);
    assert.match(content, /^Received: from localhost by mx\.contoso\.com with Mailyard Pickup;/);
    assert.doesNotMatch(content, /Bcc:|audit@contoso\.com|from somewhere/);
    assert.match(content, /\r\nSubject: Report\r\n/);
    assert.match(content, /\r\nMessage-ID: <[^>]+@mx\.contoso\.com>\r\n/);
    assert.ok(content.endsWith('\r\n\r\nHello\r\n'));
    assert.deepEqual(events, []);
  });

  test('a file without recipients becomes .bad with a log line and a BADMAIL event', async () => {
    const { logger, lines } = captureLogger();
    const svc = service(undefined, logger);
    await writeFile(join(pickup, 'norcpt.eml'), 'From: app@contoso.com\r\nSubject: nobody\r\n\r\nx\r\n');
    await writeFile(join(pickup, 'binary.eml'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]));
    await svc.pollOnce();
    assert.deepEqual((await readdir(pickup)).sort(), ['binary.bad', 'norcpt.bad']);
    assert.equal(intake.calls.length, 0);
    assert.deepEqual(events.map((e) => [e.eventId, e.source]), [['BADMAIL', 'PICKUP'], ['BADMAIL', 'PICKUP']]);
    assert.ok(events.some((e) => /no recipient/.test(e.sourceContext ?? '')));
    assert.ok(lines().some((l) => /bad file/.test(String(l.msg)) && /norcpt\.bad/.test(String(l.file))));

    // A second bad file with the same name gets a timestamped .bad name; nothing is overwritten.
    await writeFile(join(pickup, 'norcpt.eml'), 'Subject: again\r\n\r\n');
    await svc.pollOnce();
    const names = (await readdir(pickup)).sort();
    assert.equal(names.length, 3);
    assert.ok(names.some((x) => /^norcpt\d+\.bad$/.test(x)), names.join(','));
  });

  test('replay: X-Sender / X-Receiver give the envelope and are removed', async () => {
    await mkdir(replay);
    const svc = service();
    await writeFile(
      join(replay, 'export.eml'),
      'X-Sender: <bob@fabrikam.com> RET=HDRS\r\nX-Receiver: <mary@contoso.com> NOTIFY=NEVER\r\nX-Receiver: <joe@contoso.com>\r\nFrom: someone@else.com\r\nTo: list@contoso.com\r\nSubject: replayed\r\n\r\nbody\r\n',
    );
    await svc.pollOnce();
    assert.deepEqual(await readdir(replay), []);
    const { req, content } = intake.calls[0]!;
    assert.equal(req.source.kind, 'replay');
    assert.equal(req.envelope.mailFrom, 'bob@fabrikam.com');
    assert.deepEqual(req.envelope.recipients, [{ address: 'mary@contoso.com', notify: [] }, { address: 'joe@contoso.com' }]);
    assert.doesNotMatch(content, /X-Sender|X-Receiver/);
    assert.match(content, /\r\nFrom: someone@else\.com\r\n/);
  });

  test('leftover .tmp files from a crash are submitted at start-up', async () => {
    await writeFile(join(pickup, 'crashed.tmp'), 'From: a@contoso.com\r\nTo: b@fabrikam.com\r\n\r\nx\r\n');
    const svc = service();
    await svc.start();
    try {
      await waitFor(() => intake.calls.length === 1 || undefined, 'the resubmission');
      await waitFor(async () => ((await readdir(pickup)).length === 0 ? true : undefined), 'the file to disappear');
    } finally {
      await svc.stop();
    }
    assert.deepEqual(intake.calls[0]!.req.envelope.recipients, [{ address: 'b@fabrikam.com' }]);
  });

  test('a temporary refusal keeps the file for the next poll; a permanent one makes it .bad', async () => {
    const svc = service();
    await writeFile(join(pickup, 'later.eml'), 'From: a@contoso.com\r\nTo: b@fabrikam.com\r\n\r\nx\r\n');
    intake.refuse = new IntakeError(reply(452, '4.3.1', 'Insufficient system resources'), 'disk full');
    await svc.pollOnce();
    assert.deepEqual(await readdir(pickup), ['later.eml']);
    intake.refuse = undefined;
    await svc.pollOnce();
    assert.deepEqual(await readdir(pickup), []);
    assert.equal(intake.calls.length, 1);

    await writeFile(join(pickup, 'big.eml'), 'From: a@contoso.com\r\nTo: b@fabrikam.com\r\n\r\nx\r\n');
    intake.refuse = new IntakeError(reply(552, '5.3.4', 'Message size exceeds fixed maximum message size'), 'too big');
    await svc.pollOnce();
    assert.deepEqual(await readdir(pickup), ['big.bad']);
    assert.match(events.at(-1)?.sourceContext ?? '', /552 5\.3\.4/);
  });

  test('at most pickupDirectoryMaxMessagesPerMinute files per minute', async () => {
    const svc = service(configFor(pickup, replay, '  pickupDirectoryMaxMessagesPerMinute: 2\n'));
    for (const name of ['a', 'b', 'c']) await writeFile(join(pickup, `${name}.eml`), `From: x@contoso.com\r\nTo: ${name}@fabrikam.com\r\n\r\n`);
    await svc.pollOnce();
    await svc.pollOnce();
    assert.equal(intake.calls.length, 2);
    assert.deepEqual(await readdir(pickup), ['c.eml']);
  });

  test('an oversize header block is .bad', async () => {
    const svc = service(configFor(pickup, replay, '  pickupDirectoryMaxHeaderSize: 32768\n'));
    const big = `From: x@contoso.com\r\nTo: y@fabrikam.com\r\nX-Filler: ${'z'.repeat(40000)}\r\n\r\nbody\r\n`;
    await writeFile(join(pickup, 'huge.eml'), big);
    await svc.pollOnce();
    assert.deepEqual(await readdir(pickup), ['huge.bad']);
    assert.match(events[0]?.sourceContext ?? '', /larger than 32768/);
    assert.equal((await readFile(join(pickup, 'huge.bad'), 'utf8')).length, big.length, 'the bad file is kept as it was');
  });
});
