/**
 * The Pickup and Replay directory watchers (reference 8.2-8.4): `.eml` files dropped into
 * transportService.pickupDirectoryPath / replayDirectoryPath are submitted through the Intake.
 *
 * Life of a file: `name.eml` → renamed `name.<token>.tmp` while in progress (token: 16 random hex
 * digits drawn before the rename) → parsed (parse.ts) → `intake.accept` with the dedupe key
 * `pickup:<token>` (`replay:<token>`) → deleted once the Intake has stored it durably.
 * - Invalid files (not mail, NUL bytes, oversize header block, no sender/recipients, too many
 *   recipients, unreadable, or refused by the Intake with a 5xx) are renamed `name.bad`
 *   (`name<stamp>.bad` if taken), logged once and reported as a BADMAIL tracking event. The
 *   watcher never stops for a bad file.
 * - A temporary refusal (Intake 4xx or an unexpected error) renames the file back to `.eml` for
 *   the next poll; after 5 such failures in a row it is treated as bad.
 * - Polls every 5 s (injectable), at most pickupDirectoryMaxMessagesPerMinute files per directory
 *   per rolling minute, one file at a time.
 * - Crash safety, neither lost nor duplicated: the token in a `.tmp` name survives a crash, and so does
 *   the dedupe key the queue stored with the message. On start-up each leftover `.tmp` whose key is
 *   still queued (deps.isQueued) was already accepted and is deleted; every other leftover `.tmp`
 *   (including old-style `name.tmp` without a token) is renamed back to `.eml` and submitted again.
 *   Remaining window: a crash after the message was accepted AND fully delivered and removed from
 *   the queue, but before the `.tmp` was deleted, resubmits it. The unlink follows the accept
 *   immediately while delivery takes at least a categorizer pass and a connection, so this is
 *   negligible. Without isQueued every leftover is resubmitted (at least once).
 *   Writers should create files elsewhere and rename them in, so a half-written file is never seen.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config/defaults.js';
import { IntakeError, type Intake } from '../model/intake.js';
import { formatReply } from '../model/reply.js';
import type { TrackingSink } from '../model/tracking.js';
import type { PressureLevel } from '../policy/back-pressure.js';
import { headBytesNeeded, parsePickupFile, type PickupLimits } from './parse.js';

export interface PickupDeps {
  readonly config: Config;
  readonly intake: Intake;
  readonly logger: Logger;
  readonly tracking: TrackingSink;
  /** Poll interval; default 5000 ms (Exchange's fixed value). */
  readonly intervalMs?: number;
  /** Clock for rate limiting and dates; default the wall clock. */
  readonly now?: () => Date;
  /** Whether a message submitted with this IntakeRequest.dedupeKey is still queued (Transport.hasDedupeKey). */
  readonly isQueued?: (dedupeKey: string) => boolean;
  /** Back pressure: the directories are not read while the level is Medium or High (Exchange pauses Pickup too). */
  readonly pressure?: () => PressureLevel;
}

type Kind = 'pickup' | 'replay';

const MAX_TRANSIENT_FAILURES = 5;
const WINDOW_MS = 60_000;

/** `name.<16 hex>.tmp`: the token is the file's dedupe key across a crash. */
const TMP_WITH_TOKEN = /^(.*)\.([0-9a-f]{16})\.tmp$/i;

function dedupeKey(kind: Kind, token: string): string {
  return `${kind}:${token.toLowerCase()}`;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:TZ.]/g, '');
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** base + ext, or base + timestamp + ext when that name is taken. */
async function freeName(dir: string, base: string, ext: string, now: Date): Promise<string> {
  const plain = join(dir, `${base}${ext}`);
  if (!(await exists(plain))) return plain;
  for (let i = 0; i < 100; i++) {
    const candidate = join(dir, `${base}${stamp(now)}${i ? `-${i}` : ''}${ext}`);
    if (!(await exists(candidate))) return candidate;
  }
  return join(dir, `${base}${stamp(now)}-${randomUUID()}${ext}`);
}

/** Reads the file once: whether it holds NUL bytes and bytes >= 0x80. */
async function scanBytes(path: string): Promise<{ nul: boolean; eightBit: boolean }> {
  let nul = false;
  let eightBit = false;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    if (!nul && chunk.includes(0)) nul = true;
    if (!eightBit) for (const b of chunk) if (b >= 0x80) { eightBit = true; break; }
    if (nul && eightBit) break;
  }
  return { nul, eightBit };
}

export class PickupService {
  private config: Config;
  private readonly intake: Intake;
  private readonly log: Logger;
  private readonly tracking: TrackingSink;
  private readonly intervalMs: number;
  private readonly now: () => Date;
  private readonly isQueued: ((dedupeKey: string) => boolean) | undefined;
  private readonly pressure: (() => PressureLevel) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  /** Set by stop(): the poll in progress finishes its current file and goes no further. */
  private halting = false;
  private readonly recent: Record<Kind, number[]> = { pickup: [], replay: [] };
  private readonly transientFailures = new Map<string, number>();
  private readonly warnedDirs = new Set<string>();

  constructor(deps: PickupDeps) {
    this.config = deps.config;
    this.intake = deps.intake;
    this.log = deps.logger.child({ component: 'pickup' });
    this.tracking = deps.tracking;
    this.intervalMs = deps.intervalMs ?? 5000;
    this.now = deps.now ?? (() => new Date());
    this.isQueued = deps.isQueued;
    this.pressure = deps.pressure;
  }

  private directories(): { kind: Kind; dir: string }[] {
    const ts = this.config.transportService;
    const out: { kind: Kind; dir: string }[] = [];
    if (ts.pickupDirectoryPath) out.push({ kind: 'pickup', dir: ts.pickupDirectoryPath });
    if (ts.replayDirectoryPath) out.push({ kind: 'replay', dir: ts.replayDirectoryPath });
    return out;
  }

  /** Creates the directories, puts leftover `.tmp` files back in line, and starts polling. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.halting = false;
    for (const { kind, dir } of this.directories()) await this.recover(kind, dir);
    this.schedule(0);
  }

  /** Stops polling and waits for the file in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.halting = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** New paths and limits apply from the next poll; new directories are prepared. */
  reload(config: Config): void {
    const before = new Set(this.directories().map((d) => d.dir));
    this.config = config;
    for (const { kind, dir } of this.directories()) if (!before.has(dir)) void this.recover(kind, dir);
  }

  /** One pass over both directories (also used by tests and `start`). */
  async pollOnce(): Promise<void> {
    if ((this.pressure?.() ?? 'Normal') !== 'Normal') return;
    for (const { kind, dir } of this.directories()) {
      if (this.halting) break;
      await this.pollDirectory(kind, dir);
    }
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pollOnce()
        .catch((err: unknown) => this.log.error({ err }, 'pickup poll failed'))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.intervalMs);
        });
    }, delay);
  }

  private async recover(kind: Kind, dir: string): Promise<void> {
    try {
      await mkdir(dir, { recursive: true });
      for (const name of await readdir(dir)) {
        if (!name.toLowerCase().endsWith('.tmp')) continue;
        const m = TMP_WITH_TOKEN.exec(name);
        const base = m ? m[1]! : name.slice(0, -4);
        if (m && this.isQueued) {
          const key = dedupeKey(kind, m[2]!);
          if (this.isQueued(key)) {
            await unlink(join(dir, name));
            this.log.warn({ dir, file: name, dedupeKey: key }, `${kind}: deleting a file left in progress by an earlier run; it was already accepted and is queued`);
            continue;
          }
        }
        const target = await freeName(dir, base, '.eml', this.now());
        await rename(join(dir, name), target);
        this.log.warn({ dir, file: name }, `${kind}: resubmitting a file left in progress by an earlier run`);
      }
    } catch (err) {
      this.log.error({ dir, err }, 'pickup: directory not usable');
    }
  }

  private budget(kind: Kind, nowMs: number): number {
    const list = this.recent[kind].filter((t) => nowMs - t < WINDOW_MS);
    this.recent[kind] = list;
    return this.config.transportService.pickupDirectoryMaxMessagesPerMinute - list.length;
  }

  private async pollDirectory(kind: Kind, dir: string): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.toLowerCase().endsWith('.eml')).sort();
      this.warnedDirs.delete(dir);
    } catch (err) {
      if (!this.warnedDirs.has(dir)) this.log.error({ dir, err }, `${kind} directory cannot be read`);
      this.warnedDirs.add(dir);
      return;
    }
    for (const name of names) {
      if (this.halting) return;
      if (this.budget(kind, this.now().getTime()) <= 0) return;
      this.recent[kind].push(this.now().getTime());
      await this.processFile(kind, dir, name);
    }
  }

  private async processFile(kind: Kind, dir: string, name: string): Promise<void> {
    const base = name.slice(0, -4);
    const original = join(dir, name);
    let work: string;
    // Drawn before the rename: the `.tmp` name carries it, so a restart can find the queued message.
    const token = randomBytes(8).toString('hex');
    try {
      const st = await stat(original);
      if (!st.isFile()) return;
      work = await freeName(dir, `${base}.${token}`, '.tmp', this.now());
      await rename(original, work);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ dir, file: name, err }, `${kind}: cannot take the file`);
      return;
    }

    const ts = this.config.transportService;
    const limits: PickupLimits = { maxHeaderSize: ts.pickupDirectoryMaxHeaderSize, maxRecipients: ts.pickupDirectoryMaxRecipientsPerMessage };
    let head: Buffer;
    let size: number;
    let scan: { nul: boolean; eightBit: boolean };
    try {
      const fh = await open(work, 'r');
      try {
        size = (await fh.stat()).size;
        const buf = Buffer.alloc(Math.min(size, headBytesNeeded(kind, limits)));
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        head = buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
      scan = await scanBytes(work);
    } catch (err) {
      return this.badmail(kind, dir, base, work, `file cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (size === 0) return this.badmail(kind, dir, base, work, 'empty file');
    if (scan.nul) return this.badmail(kind, dir, base, work, 'NUL bytes in the file (binary, not a text message)');

    const now = this.now();
    const parsed = parsePickupFile(head, {
      kind,
      limits,
      fileSize: size,
      eightBit: scan.eightBit,
      now,
      fqdn: this.config.server.fqdn,
      uniqueId: randomUUID(),
    });
    if (!parsed.ok) return this.badmail(kind, dir, base, work, parsed.reason, parsed.sender, parsed.recipients);

    const header = Buffer.from(parsed.header, parsed.headerEncoding);
    const bodyOffset = parsed.bodyOffset;
    async function* content(): AsyncGenerator<Buffer> {
      yield header;
      if (bodyOffset < size) yield* createReadStream(work, { start: bodyOffset }) as AsyncIterable<Buffer>;
    }
    try {
      const result = await this.intake.accept(
        { envelope: parsed.envelope, source: { kind }, receivedAt: now, prepend: parsed.received, dedupeKey: dedupeKey(kind, token) },
        Readable.from(content()),
      );
      this.transientFailures.delete(join(dir, base));
      this.log.info(
        { dir, file: name, messageId: result.id, sender: parsed.envelope.mailFrom, recipients: parsed.envelope.recipients.length },
        `${kind}: message submitted`,
      );
    } catch (err) {
      if (err instanceof IntakeError && err.reply.code >= 500) {
        return this.badmail(kind, dir, base, work, `refused: ${formatReply(err.reply)}`, parsed.envelope.mailFrom ?? '', parsed.envelope.recipients.map((r) => r.address));
      }
      const key = join(dir, base);
      const failures = (this.transientFailures.get(key) ?? 0) + 1;
      this.transientFailures.set(key, failures);
      if (failures >= MAX_TRANSIENT_FAILURES) {
        this.transientFailures.delete(key);
        return this.badmail(kind, dir, base, work, `not accepted after ${failures} attempts: ${(err as Error).message}`);
      }
      this.log.warn({ dir, file: name, err: err instanceof IntakeError ? formatReply(err.reply) : (err as Error).message }, `${kind}: submission failed; will retry`);
      try {
        await rename(work, await freeName(dir, base, '.eml', this.now()));
      } catch (renameErr) {
        this.log.error({ dir, file: work, err: renameErr }, `${kind}: cannot put the file back`);
      }
      return;
    }
    try {
      await unlink(work);
    } catch (err) {
      this.log.error({ dir, file: work, err }, `${kind}: submitted but cannot delete the file; it will be submitted again at restart`);
    }
  }

  private async badmail(kind: Kind, dir: string, base: string, work: string, reason: string, sender?: string, recipients?: readonly string[]): Promise<void> {
    let badPath = work;
    try {
      badPath = await freeName(dir, base, '.bad', this.now());
      await rename(work, badPath);
    } catch (err) {
      this.log.error({ dir, file: work, err }, `${kind}: cannot rename a bad file`);
    }
    this.log.warn({ dir, file: badPath, reason }, `${kind}: bad file, renamed .bad: ${reason}`);
    this.tracking.emit({
      timestamp: this.now(),
      eventId: 'BADMAIL',
      source: 'PICKUP',
      messageId: badPath.slice(dir.length + 1),
      sender: sender ?? '',
      recipients: recipients ?? [],
      sourceContext: `${kind === 'pickup' ? 'Pickup' : 'Replay'}: ${reason}`,
    });
  }
}
