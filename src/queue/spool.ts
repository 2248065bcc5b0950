/**
 * The spool: plain files under `server.dataDir`, laid out for an administrator (docs/spool.md):
 *
 *   queue/v1/messages/<id>.eml    the message as accepted (our Received header first, CRLF line
 *                                 endings, not dot-stuffed). Written once and fsync'd; stored once
 *                                 however many next hops the message has.
 *   queue/v1/log/<seq>.jsonl      the record log (record-log.ts): one JSON line per version of a
 *                                 message's record (envelope + per-recipient state), and
 *                                 {"removed":"<id>"} when it leaves the queue. Last line wins.
 *   queue/v1/journal/<seq>.dat    content of small new messages, group-committed (content-journal.ts),
 *                                 until each has a file of its own or leaves the queue.
 *   queue/v1/quarantine/          damaged records (and their content) set aside at start-up.
 *
 * Promises: `commitNew` resolves only when the content is durable (its journal entry, or its file
 * and directory entry, fsync'd) and the record line is durable; journal, directory and record
 * syncs are shared between concurrent callers (group commit). A record line is the commit
 * marker: content without a record was never acknowledged and is removed at start-up. Removal
 * appends the removal line before deleting the content. Only the header block is looked at while
 * spooling. ENOSPC/EDQUOT become IntakeError 452 4.3.1.
 */
import { closeSync, fsync as fsyncCb, openSync } from 'node:fs';
import { open, readdir, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { IntakeError } from '../model/intake.js';
import type { MessageId } from '../model/ids.js';
import { findHeaderEnd } from '../model/message-headers.js';
import { DirSyncer, ensureDir, fsyncDir, writeFileAtomic } from '../platform/fs-atomic.js';
import { appendDurably, writeAllSync } from '../platform/group-commit.js';
import { CrlfNormalizer, Interner, decodeRecord, readHeaderFacts, type HeaderFacts, type MessageRecord } from './record.js';
import { RecordLog } from './record-log.js';
import { ContentJournal } from './content-journal.js';

export { CrlfNormalizer } from './record.js';

export const SPOOL_LAYOUT_VERSION = 'v1';
const MAX_HEADER_CAPTURE = 256 * 1024;
/** Messages up to this size are journalled, or written with one synchronous writev (see writeContent). */
const SYNC_WRITE_MAX = 256 * 1024;
/** Journalled messages are also held in memory, at most this much in all; past it they get a file at once. */
const HOLD_BUDGET_BYTES = 32 * 1024 * 1024;
/** A journalled message still queued this long after it was accepted gets a file of its own. */
const HOLD_MS = 5_000;

/** An open, written content file awaiting commitNew. */
export interface ContentFile {
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** A small message bound for the content journal at commitNew (memory reserved against the hold budget). */
export class JournalContent {
  constructor(readonly data: Buffer) {}
}

export type StagedContent = ContentFile | JournalContent;

/** A journalled message: its bytes in memory, and the journal segment that holds them durably. */
interface Held {
  readonly data: Buffer;
  readonly seq: number;
  readonly at: number;
  /** Set while its own file is being written. */
  writing?: Promise<void>;
}

function fdFile(fd: number): ContentFile {
  let closed = false;
  return {
    sync: () => new Promise<void>((resolve, reject) => fsyncCb(fd, (err) => (err ? reject(err) : resolve()))),
    close: async () => {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}

export interface SpoolOptions {
  readonly dataDir: string;
  readonly fsync: boolean;
  readonly logger: Logger;
  /** The current record of a queued message (for log compaction); undefined once it is gone. */
  readonly liveRecord?: (id: string) => MessageRecord | undefined;
  /** Record-log segment size that triggers rotation and compaction (default 16 MB). */
  readonly segmentBytes?: number;
  /** Content-journal segment size (default 16 MB; tests use a small one). */
  readonly journalSegmentBytes?: number;
  /** Milliseconds a journalled message may wait before it gets its own file (default 5 s). */
  readonly holdMs?: number;
  /** Bytes of journalled messages held in memory at most (default 32 MB; tests use less). */
  readonly holdBudgetBytes?: number;
}

export interface QuarantinedRecord {
  readonly id: string;
  readonly reason: string;
}

export interface LoadResult {
  readonly records: MessageRecord[];
  readonly quarantined: QuarantinedRecord[];
  readonly orphansRemoved: number;
}

export interface ContentInfo extends HeaderFacts {
  readonly size: number;
}

function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function storageError(err: unknown): IntakeError {
  if (err instanceof IntakeError) return err;
  if (isDiskFull(err)) return new IntakeError({ code: 452, enhanced: '4.3.1', text: 'Insufficient system storage' }, 'disk full while spooling', { cause: err });
  return new IntakeError({ code: 451, enhanced: '4.3.0', text: 'Local error in processing; try again later' }, `spool write failed: ${(err as Error)?.message}`, { cause: err });
}

export function recordLine(r: MessageRecord): string {
  return JSON.stringify(r);
}

export class Spool {
  readonly root: string;
  readonly messagesDir: string;
  readonly logDir: string;
  readonly quarantineDir: string;
  readonly journalDir: string;
  private readonly msgDir: DirSyncer;
  private readonly log: RecordLog;
  private readonly journal: ContentJournal;
  private readonly held = new Map<string, Held>();
  private heldBytes = 0;
  private readonly holdMs: number;
  private readonly holdBudget: number;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly logger: Logger;
  readonly fsync: boolean;
  /** Content files fsync'd (benchmarks: fsyncs per message). */
  fileSyncs = 0;

  constructor(opts: SpoolOptions) {
    this.root = join(opts.dataDir, 'queue', SPOOL_LAYOUT_VERSION);
    this.messagesDir = join(this.root, 'messages');
    this.logDir = join(this.root, 'log');
    this.quarantineDir = join(this.root, 'quarantine');
    this.journalDir = join(this.root, 'journal');
    this.fsync = opts.fsync;
    this.holdMs = opts.holdMs ?? HOLD_MS;
    this.holdBudget = opts.holdBudgetBytes ?? HOLD_BUDGET_BYTES;
    this.journal = new ContentJournal(this.journalDir, opts.fsync, opts.journalSegmentBytes);
    this.logger = opts.logger;
    this.msgDir = new DirSyncer([this.messagesDir], { fsync: opts.fsync });
    const live = opts.liveRecord;
    this.log = new RecordLog(this.logDir, opts.fsync, (id) => {
      const r = live?.(id);
      return r ? recordLine(r) : undefined;
    }, opts.segmentBytes);
  }

  /** fsync rounds that are not content files: directory fsyncs + record-log and journal commits. */
  get sharedSyncs(): number {
    return this.msgDir.rounds + this.log.syncs + this.journal.syncs;
  }

  async init(): Promise<void> {
    for (const d of [this.messagesDir, this.logDir, this.quarantineDir, this.journalDir]) await ensureDir(d);
    const readme = join(this.root, 'README');
    await writeFile(readme, 'Mailyard queue spool, layout v1: messages/<id>.eml (content), log/<seq>.jsonl (records, last line wins), quarantine/. See docs/spool.md. Do not edit files while the daemon runs.\n', { flag: 'wx' }).catch(() => {});
  }

  bodyPath(id: MessageId | string): string {
    return join(this.messagesDir, `${id}.eml`);
  }

  /**
   * Stages the content (prepend first, CRLF line endings) WITHOUT making it durable; `commitNew`
   * does that. A message handed over as a Buffer of up to SYNC_WRITE_MAX goes to the content
   * journal when memory allows (nothing is written yet), otherwise into its own file with one
   * synchronous open + writev: for small files that is far cheaper than a round trip through the
   * thread pool per open, write and close. A stream goes to its file as it arrives.
   */
  async writeContent(id: MessageId, prepend: string | undefined, body: Readable | Buffer): Promise<{ info: ContentInfo; fh: StagedContent }> {
    const path = this.bodyPath(id);
    const norm = new CrlfNormalizer();
    let size = 0;
    const head: Buffer[] = [];
    let headLen = 0;
    let headDone = false;
    // Already in memory and small: written in one synchronous writev at the end. A stream goes to
    // its file as it arrives (never held here, so memory stays bounded by the callers' buffers).
    let gathered: Buffer[] | undefined = Buffer.isBuffer(body) && body.length + Buffer.byteLength(prepend ?? '') <= SYNC_WRITE_MAX ? [] : undefined;
    let fh: FileHandle | undefined;
    let created = false; // only a file this call created is removed on failure
    const captureHead = (out: Buffer) => {
      head.push(out);
      headLen += out.length;
      const joined = head.length > 1 ? Buffer.concat(head) : out;
      const split = findHeaderEnd(joined);
      if (split || headLen > MAX_HEADER_CAPTURE) {
        headDone = true;
        head.length = 0;
        // Only the header block and its empty line are kept (they become a string below), never the body.
        head.push(joined.subarray(0, Math.min(split ? split.bodyStart : joined.length, MAX_HEADER_CAPTURE)));
      } else if (head.length > 1) {
        head.length = 0;
        head.push(joined);
      }
    };
    const take = async (buf: Buffer) => {
      if (!buf.length) return;
      const out = norm.push(buf);
      if (!headDone) captureHead(out);
      size += out.length;
      if (gathered) {
        gathered.push(out);
        return;
      }
      if (!fh) {
        fh = await open(path, 'wx', 0o640);
        created = true;
      }
      await appendDurably(fh, [out], false);
    };
    try {
      if (prepend && Buffer.isBuffer(body)) {
        await take(Buffer.concat([Buffer.from(prepend, 'utf8'), body]));
      } else {
        if (prepend) await take(Buffer.from(prepend, 'utf8'));
        if (Buffer.isBuffer(body)) await take(body);
        else for await (const chunk of body) await take(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
      }
      let file: StagedContent;
      if (gathered && this.heldBytes + size <= this.holdBudget) {
        this.heldBytes += size; // reserved now; given back by commitNew on failure or by release
        file = new JournalContent(gathered.length === 1 ? gathered[0]! : Buffer.concat(gathered, size));
      } else if (gathered) {
        const fd = openSync(path, 'wx', 0o640);
        created = true;
        try {
          writeAllSync(fd, gathered);
        } catch (err) {
          closeSync(fd);
          throw err;
        }
        file = fdFile(fd);
      } else {
        // an empty stream still makes an (empty) content file
        if (!fh) {
          fh = await open(path, 'wx', 0o640);
          created = true;
        }
        file = fh;
      }
      // readHeaderFacts stops at the empty line that ends the captured block.
      const facts = readHeaderFacts(head.length ? head[0]!.toString('latin1') : '');
      return { info: { ...facts, size }, fh: file };
    } catch (err) {
      if (fh) await fh.close().catch(() => {});
      if (created) await unlink(path).catch(() => {});
      throw err;
    }
  }

  /**
   * Makes a new message durable: the content fsync, the (shared) directory fsync and the (shared)
   * record append run in parallel, and the promise resolves when all three are done. Running them
   * in parallel means a power cut can leave a durable record whose content never reached the disk;
   * such a message was never acknowledged, and load() sets the record aside in quarantine. A crash
   * of the process alone cannot cause it (the content is in the page cache before the append).
   */
  async commitNew(record: MessageRecord, content: StagedContent): Promise<void> {
    if (content instanceof JournalContent) return this.commitJournalled(record, content);
    try {
      const syncContent = async () => {
        if (this.fsync) {
          await content.sync();
          this.fileSyncs++;
        }
        await content.close();
      };
      const results = await Promise.allSettled([syncContent(), this.msgDir.sync(), this.log.append([{ id: record.id, text: recordLine(record) }])]);
      await this.undoIfFailed(record.id, results);
    } catch (err) {
      await content.close().catch(() => {});
      await unlink(this.bodyPath(record.id)).catch(() => {});
      throw err;
    }
  }

  /** Not acknowledged: takes the record back if it made it to the log, then throws the failure. */
  private async undoIfFailed(id: string, results: PromiseSettledResult<unknown>[]): Promise<void> {
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) return;
    if (results.at(-1)!.status === 'fulfilled') await this.log.append([{ id, text: undefined }]).catch(() => {});
    throw failed.reason;
  }

  /** commitNew for a journalled message: its journal entry and its record line, in parallel. */
  private async commitJournalled(record: MessageRecord, content: JournalContent): Promise<void> {
    const id = record.id;
    const results = await Promise.allSettled([this.journal.append(id, content.data), this.log.append([{ id, text: recordLine(record) }])]);
    if (results[0].status === 'fulfilled') {
      this.held.set(id, { data: content.data, seq: results[0].value, at: Date.now() });
      this.armSweeper();
    } else this.heldBytes -= content.data.length;
    try {
      await this.undoIfFailed(id, results);
    } catch (err) {
      this.dropHeld(id);
      throw err;
    }
  }

  /** The content of a message still held in memory (journalled), else undefined: read its file. */
  heldContent(id: string): Buffer | undefined {
    return this.held.get(id)?.data;
  }

  /** The whole content of a queued message, from memory or from its file. */
  async readContent(id: string): Promise<Buffer> {
    return this.heldContent(id) ?? (await readFile(this.bodyPath(id)));
  }

  /**
   * Makes sure `bodyPath(id)` exists: a journalled message gets its own file (written to a
   * temporary name, fsync'd, renamed, directory fsync'd) and the journal lets go of it.
   */
  ensureFile(id: string): Promise<void> {
    const h = this.held.get(id);
    if (!h) return Promise.resolve();
    h.writing ??= this.writeOut(id, h).catch((err: unknown) => {
      delete h.writing;
      throw err;
    });
    return h.writing;
  }

  private async writeOut(id: string, h: Held): Promise<void> {
    await writeFileAtomic(this.bodyPath(id), h.data, { fsync: this.fsync });
    if (this.fsync) this.fileSyncs++;
    await this.msgDir.sync();
    if (this.held.get(id) === h) this.dropHeld(id);
  }

  private dropHeld(id: string): void {
    const h = this.held.get(id);
    if (!h) return;
    this.held.delete(id);
    this.heldBytes -= h.data.length;
    this.journal.release(h.seq);
  }

  /** Journalled messages that have waited `holdMs` get their own file (the map is in commit order). */
  private armSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      const cutoff = Date.now() - this.holdMs;
      for (const [id, h] of this.held) {
        if (h.at > cutoff) break;
        if (!h.writing) this.ensureFile(id).catch((err: unknown) => this.logger.warn({ err, messageId: id }, `could not write the content file of ${id}; it stays in the journal and is tried again`));
      }
      if (this.held.size) this.armSweeper();
    }, Math.max(100, Math.min(1000, this.holdMs)));
    this.sweeper.unref();
  }

  /** Journalled messages held in memory: count and bytes (tests, metrics). */
  get heldStats(): { messages: number; bytes: number; journalSegments: number } {
    return { messages: this.held.size, bytes: this.heldBytes, journalSegments: this.journal.segmentCount };
  }

  /** Records a new version of a record durably (group-committed). */
  async persist(record: MessageRecord): Promise<void> {
    await this.log.append([{ id: record.id, text: recordLine(record) }]);
  }

  /** Removes a message: the removal line first (durable), then the content. */
  async remove(id: MessageId | string): Promise<void> {
    await this.log.append([{ id, text: undefined }]);
    const h = this.held.get(id);
    if (h?.writing) await h.writing.catch(() => {});
    if (this.held.has(id)) this.dropHeld(id);
    else await unlink(this.bodyPath(id)).catch(() => {});
  }

  private async quarantineRaw(id: string | undefined, where: string, raw: string, reason: string): Promise<void> {
    const name = id ?? where.replace(/[^0-9A-Za-z.-]/g, '_');
    await writeFile(join(this.quarantineDir, `${name}.json`), `${raw}\n`).catch(() => {});
    if (id) {
      await rename(this.bodyPath(id), join(this.quarantineDir, `${id}.eml`)).catch(() => {});
    }
    await writeFile(join(this.quarantineDir, `${name}.reason.txt`), `${where}: ${reason}\n`).catch(() => {});
    this.logger.warn({ event: 'spool.quarantine', messageId: id, where, reason }, `spool record ${id ?? where} is damaged and was moved to ${this.quarantineDir}: ${reason}`);
  }

  /** Replays the record log; damaged records are quarantined, leftovers of unacknowledged writes removed. Opens the log for appends. */
  async load(): Promise<LoadResult> {
    const names = await readdir(this.messagesDir);
    const messageNames = new Set(names.filter((n) => n.endsWith('.eml')));
    // Half-written content files (a crash while a journalled message got its own file).
    for (const n of names) if (n.endsWith('.tmp')) await unlink(join(this.messagesDir, n)).catch(() => {});
    const { records: parsed, damaged } = await this.log.replay();
    const journal = await this.recoverJournal(parsed, messageNames);
    const interner = new Interner();
    const records: MessageRecord[] = [];
    const quarantined: QuarantinedRecord[] = [];
    for (const d of damaged) {
      if (d.id && parsed.has(d.id)) continue; // a later good version exists
      await this.quarantineRaw(d.id, d.where, d.raw, d.reason);
      quarantined.push({ id: d.id ?? d.where, reason: d.reason });
      if (d.id) messageNames.delete(`${d.id}.eml`);
    }
    for (const [id, obj] of parsed) {
      const rec = decodeRecord(obj, id);
      let reason: string | undefined;
      if ('error' in rec) reason = rec.error;
      else if (!messageNames.has(`${id}.eml`) && !this.held.has(id)) reason = 'content file is missing';
      if (reason !== undefined) {
        const held = this.held.get(id);
        if (held) {
          // Its content was only in the journal: it goes to quarantine with the record.
          await writeFile(join(this.quarantineDir, `${id}.eml`), held.data).catch(() => {});
          this.dropHeld(id);
        }
        await this.quarantineRaw(id, 'log', JSON.stringify(obj), reason);
        quarantined.push({ id, reason });
        this.log.forget(id);
        messageNames.delete(`${id}.eml`);
        continue;
      }
      records.push(interner.record(rec as MessageRecord));
      messageNames.delete(`${id}.eml`);
    }
    let orphansRemoved = 0;
    for (const name of messageNames) {
      await unlink(join(this.messagesDir, name)).catch(() => {});
      orphansRemoved++;
    }
    if (quarantined.length && this.fsync) await fsyncDir(this.quarantineDir).catch(() => {});
    await this.log.open();
    await this.journal.open();
    if (journal.segments) {
      const n = this.held.size;
      this.logger.info({ event: 'spool.journal', segments: journal.segments, held: n, damaged: journal.damaged }, `content journal: ${n} queued message(s) taken back from ${journal.segments} segment(s)`);
    }
    if (this.held.size) this.armSweeper();
    parsed.clear();
    records.sort((a, b) => a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : 1));
    return { records, quarantined, orphansRemoved };
  }

  /**
   * Start-up after a crash: every live record whose content is only in the content journal is
   * held again (in memory, its segment kept), as it was before the crash; it gets its own file
   * the usual way. Nothing is written here, so a full disk does not stop the start.
   */
  private recoverJournal(parsed: ReadonlyMap<string, unknown>, messageNames: ReadonlySet<string>): Promise<{ segments: number; damaged: number }> {
    const now = Date.now();
    return this.journal.scan((id, content, seq) => {
      if (!parsed.has(id) || messageNames.has(`${id}.eml`) || this.held.has(id)) return false;
      const data = Buffer.from(content); // a copy: the segment image is not kept
      this.held.set(id, { data, seq, at: now });
      this.heldBytes += data.length;
      return true;
    });
  }

  /** Number of record-log segment files (tests). */
  get logSegments(): number {
    return this.log.segmentCount;
  }

  async close(): Promise<void> {
    if (this.sweeper) clearTimeout(this.sweeper);
    this.sweeper = undefined;
    await this.log.close();
    await this.journal.close();
  }
}
