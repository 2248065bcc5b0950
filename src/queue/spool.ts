/**
 * The spool: plain files under `server.dataDir`, laid out for an administrator (docs/spool.md):
 *
 *   queue/v1/messages/<id>.eml    the message as accepted (our Received header first, CRLF line
 *                                 endings, not dot-stuffed). Written once and fsync'd; stored once
 *                                 however many next hops the message has.
 *   queue/v1/log/<seq>.jsonl      the record log (record-log.ts): one JSON line per version of a
 *                                 message's record (envelope + per-recipient state), and
 *                                 {"removed":"<id>"} when it leaves the queue. Last line wins.
 *   queue/v1/quarantine/          damaged records (and their content) set aside at start-up.
 *
 * Promises: `commitNew` resolves only when the content is fsync'd, its directory entry is fsync'd
 * and the record line is durable; directory fsyncs and record appends are shared between concurrent
 * callers (group commit), so the cost per message is about one fsync. A record line is the commit
 * marker: content without a record was never acknowledged and is removed at start-up. Removal
 * appends the removal line before deleting the content. Only the header block is looked at while
 * spooling. ENOSPC/EDQUOT become IntakeError 452 4.3.1.
 */
import { closeSync, fsync as fsyncCb, openSync, writevSync } from 'node:fs';
import { open, readdir, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { IntakeError } from '../model/intake.js';
import type { MessageId } from '../model/ids.js';
import { DirSyncer, ensureDir, fsyncDir } from '../platform/fs-atomic.js';
import { CrlfNormalizer, Interner, decodeRecord, readHeaderFacts, type HeaderFacts, type MessageRecord } from './record.js';
import { RecordLog } from './record-log.js';

export { CrlfNormalizer } from './record.js';

export const SPOOL_LAYOUT_VERSION = 'v1';
const MAX_HEADER_CAPTURE = 256 * 1024;
/** Messages up to this size are written with one synchronous writev (see writeContent). */
const SYNC_WRITE_MAX = 256 * 1024;

/** An open, written content file awaiting commitNew. */
export interface ContentFile {
  sync(): Promise<void>;
  close(): Promise<void>;
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

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}

function writevAllSync(fd: number, bufs: Buffer[]): void {
  let rest = bufs.filter((b) => b.length > 0);
  while (rest.length) {
    let n = writevSync(fd, rest);
    while (rest.length && n >= rest[0]!.length) {
      n -= rest[0]!.length;
      rest = rest.slice(1);
    }
    if (n > 0 && rest.length) rest = [rest[0]!.subarray(n), ...rest.slice(1)];
  }
}

export interface SpoolOptions {
  readonly dataDir: string;
  readonly fsync: boolean;
  readonly logger: Logger;
  /** The current record of a queued message (for log compaction); undefined once it is gone. */
  readonly liveRecord?: (id: string) => MessageRecord | undefined;
  /** Record-log segment size that triggers rotation and compaction (default 16 MB). */
  readonly segmentBytes?: number;
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
  private readonly msgDir: DirSyncer;
  private readonly log: RecordLog;
  private readonly logger: Logger;
  readonly fsync: boolean;
  /** Content files fsync'd (benchmarks: fsyncs per message). */
  fileSyncs = 0;

  constructor(opts: SpoolOptions) {
    this.root = join(opts.dataDir, 'queue', SPOOL_LAYOUT_VERSION);
    this.messagesDir = join(this.root, 'messages');
    this.logDir = join(this.root, 'log');
    this.quarantineDir = join(this.root, 'quarantine');
    this.fsync = opts.fsync;
    this.logger = opts.logger;
    this.msgDir = new DirSyncer([this.messagesDir], { fsync: opts.fsync });
    const live = opts.liveRecord;
    this.log = new RecordLog(this.logDir, opts.fsync, (id) => {
      const r = live?.(id);
      return r ? recordLine(r) : undefined;
    }, opts.segmentBytes);
  }

  /** fsync rounds that are not content files: directory fsyncs + record-log commits. */
  get sharedSyncs(): number {
    return this.msgDir.rounds + this.log.syncs;
  }

  async init(): Promise<void> {
    for (const d of [this.messagesDir, this.logDir, this.quarantineDir]) await ensureDir(d);
    const readme = join(this.root, 'README');
    await writeFile(readme, 'Mailyard queue spool, layout v1: messages/<id>.eml (content), log/<seq>.jsonl (records, last line wins), quarantine/. See docs/spool.md. Do not edit files while the daemon runs.\n', { flag: 'wx' }).catch(() => {});
  }

  bodyPath(id: MessageId | string): string {
    return join(this.messagesDir, `${id}.eml`);
  }

  /**
   * Writes the content file (prepend first, CRLF line endings) WITHOUT fsync; returns the open file
   * for `commitNew`. A message handed over as a Buffer of up to SYNC_WRITE_MAX is written with one
   * synchronous open + writev: for small files that is far cheaper than a round trip through the
   * thread pool per open, write and close. A stream goes to the file as it arrives.
   */
  async writeContent(id: MessageId, prepend: string | undefined, body: Readable | Buffer): Promise<{ info: ContentInfo; fh: ContentFile }> {
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
      if (joined.indexOf('\r\n\r\n') !== -1 || (joined[0] === 13 && joined[1] === 10) || headLen > MAX_HEADER_CAPTURE) {
        headDone = true;
        head.length = 0;
        head.push(joined.subarray(0, Math.min(joined.length, MAX_HEADER_CAPTURE)));
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
      await writeAll(fh, out);
    };
    try {
      if (prepend && Buffer.isBuffer(body)) {
        await take(Buffer.concat([Buffer.from(prepend, 'utf8'), body]));
      } else {
        if (prepend) await take(Buffer.from(prepend, 'utf8'));
        if (Buffer.isBuffer(body)) await take(body);
        else for await (const chunk of body) await take(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
      }
      let file: ContentFile;
      if (gathered) {
        const fd = openSync(path, 'wx', 0o640);
        created = true;
        try {
          writevAllSync(fd, gathered);
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
      const headerText = head.length ? head[0]!.toString('latin1') : '';
      const end = headerText.indexOf('\r\n\r\n');
      const facts = readHeaderFacts(end >= 0 ? headerText.slice(0, end) : headerText);
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
  async commitNew(record: MessageRecord, content: ContentFile): Promise<void> {
    try {
      const syncContent = async () => {
        if (this.fsync) {
          await content.sync();
          this.fileSyncs++;
        }
        await content.close();
      };
      const results = await Promise.allSettled([syncContent(), this.msgDir.sync(), this.log.append([{ id: record.id, text: recordLine(record) }])]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        // Not acknowledged: take the record back if it made it, then the content.
        if (results[2]!.status === 'fulfilled') await this.log.append([{ id: record.id, text: undefined }]).catch(() => {});
        throw failed.reason;
      }
    } catch (err) {
      await content.close().catch(() => {});
      await unlink(this.bodyPath(record.id)).catch(() => {});
      throw err;
    }
  }

  /** Records a new version of a record durably (group-committed). */
  async persist(record: MessageRecord): Promise<void> {
    await this.log.append([{ id: record.id, text: recordLine(record) }]);
  }

  /** Removes a message: the removal line first (durable), then the content. */
  async remove(id: MessageId | string): Promise<void> {
    await this.log.append([{ id, text: undefined }]);
    await unlink(this.bodyPath(id)).catch(() => {});
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
    const messageNames = new Set((await readdir(this.messagesDir)).filter((n) => n.endsWith('.eml')));
    const { records: parsed, damaged } = await this.log.replay();
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
      else if (!messageNames.has(`${id}.eml`)) reason = 'content file is missing';
      if (reason !== undefined) {
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
    parsed.clear();
    records.sort((a, b) => a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : 1));
    return { records, quarantined, orphansRemoved };
  }

  /** Number of record-log segment files (tests). */
  get logSegments(): number {
    return this.log.segmentCount;
  }

  async close(): Promise<void> {
    await this.log.close();
  }
}
