/**
 * The spool: plain files under `server.dataDir`, laid out for an administrator (docs/spool.md):
 *
 *   queue/v1/messages/<id>.eml    the message as accepted (our Received header first, CRLF line
 *                                 endings, not dot-stuffed). Written once; stored once however
 *                                 many next hops the message has.
 *   queue/v1/records/<id>.json    envelope + per-recipient state (record.ts), replaced atomically
 *                                 (temp -> fsync -> rename -> fsync directory).
 *   queue/v1/quarantine/          damaged records (and their content) set aside at start-up.
 *
 * Promises: `store` resolves only when the content and the record are fsync'd and their directory
 * entries are too (directory fsyncs are shared between concurrent callers: group commit). A record
 * is the commit marker: content without a record was never acknowledged and is removed at start-up.
 * Only the header block is looked at while spooling. ENOSPC/EDQUOT become IntakeError 452 4.3.1.
 */
import { open, readdir, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { IntakeError } from '../model/intake.js';
import type { MessageId } from '../model/ids.js';
import { DirSyncer, ensureDir, writeFileAtomic, fsyncDir } from '../platform/fs-atomic.js';
import { CrlfNormalizer, decodeRecord, encodeRecord, readHeaderFacts, type HeaderFacts, type MessageRecord } from './record.js';

export const SPOOL_LAYOUT_VERSION = 'v1';
const MAX_HEADER_CAPTURE = 256 * 1024;

export interface SpoolOptions {
  readonly dataDir: string;
  readonly fsync: boolean;
  readonly logger: Logger;
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

export { CrlfNormalizer } from './record.js';

export class Spool {
  readonly root: string;
  readonly messagesDir: string;
  readonly recordsDir: string;
  readonly quarantineDir: string;
  private readonly dirs: DirSyncer;
  private readonly logger: Logger;
  readonly fsync: boolean;
  /** Files fsync'd (for benchmarks: fsyncs per message). */
  fileSyncs = 0;

  constructor(opts: SpoolOptions) {
    this.root = join(opts.dataDir, 'queue', SPOOL_LAYOUT_VERSION);
    this.messagesDir = join(this.root, 'messages');
    this.recordsDir = join(this.root, 'records');
    this.quarantineDir = join(this.root, 'quarantine');
    this.fsync = opts.fsync;
    this.logger = opts.logger;
    this.dirs = new DirSyncer([this.messagesDir, this.recordsDir], { fsync: opts.fsync });
  }

  get dirSyncRounds(): number {
    return this.dirs.rounds;
  }

  async init(): Promise<void> {
    for (const d of [this.messagesDir, this.recordsDir, this.quarantineDir]) await ensureDir(d);
    const readme = join(this.root, 'README');
    await writeFile(readme, 'Mailyard queue spool, layout v1. See docs/spool.md. Do not edit files while the daemon runs.\n', { flag: 'wx' }).catch(() => {});
  }

  bodyPath(id: MessageId | string): string {
    return join(this.messagesDir, `${id}.eml`);
  }

  recordPath(id: MessageId | string): string {
    return join(this.recordsDir, `${id}.json`);
  }

  /**
   * Writes the content file (prepend first, CRLF line endings) WITHOUT fsync; returns the open handle
   * for `commitNew` to fsync in parallel with the record.
   */
  async writeContent(id: MessageId, prepend: string | undefined, body: Readable | Buffer): Promise<{ info: ContentInfo; fh: FileHandle }> {
    const fh = await open(this.bodyPath(id), 'wx', 0o640);
    try {
      const norm = new CrlfNormalizer();
      let size = 0;
      const head: Buffer[] = [];
      let headLen = 0;
      let headDone = false;
      const take = async (buf: Buffer) => {
        if (!buf.length) return;
        const out = norm.push(buf);
        if (!headDone) {
          head.push(out);
          headLen += out.length;
          const joined = head.length > 1 ? Buffer.concat(head) : out;
          if (joined.indexOf('\r\n\r\n') !== -1 || joined.subarray(0, 2).toString() === '\r\n' || headLen > MAX_HEADER_CAPTURE) {
            headDone = true;
            head.length = 0;
            head.push(joined.subarray(0, Math.min(joined.length, MAX_HEADER_CAPTURE)));
          } else if (head.length > 1) {
            head.length = 0;
            head.push(joined);
          }
        }
        let off = 0;
        while (off < out.length) {
          const { bytesWritten } = await fh.write(out, off, out.length - off);
          off += bytesWritten;
        }
        size += out.length;
      };
      if (prepend) await take(Buffer.from(prepend, 'utf8'));
      if (Buffer.isBuffer(body)) await take(body);
      else for await (const chunk of body) await take(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
      const headerText = head.length ? head[0]!.toString('latin1') : '';
      const end = headerText.indexOf('\r\n\r\n');
      const facts = readHeaderFacts(end >= 0 ? headerText.slice(0, end) : headerText);
      return { info: { ...facts, size }, fh };
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(this.bodyPath(id)).catch(() => {});
      throw err;
    }
  }

  /** Makes a new message durable: fsync content + record temp in parallel, rename, shared directory fsync. */
  async commitNew(record: MessageRecord, content: FileHandle): Promise<void> {
    const id = record.id;
    const tmp = join(this.recordsDir, `.${id}.json.tmp`);
    let recFh: FileHandle | undefined;
    try {
      recFh = await open(tmp, 'w', 0o640);
      await recFh.writeFile(encodeRecord(record));
      if (this.fsync) {
        await Promise.all([content.sync(), recFh.sync()]);
        this.fileSyncs += 2;
      }
      await recFh.close();
      recFh = undefined;
      await content.close();
      await rename(tmp, this.recordPath(id));
      await this.dirs.sync();
    } catch (err) {
      await recFh?.close().catch(() => {});
      await content.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      await unlink(this.recordPath(id)).catch(() => {});
      await unlink(this.bodyPath(id)).catch(() => {});
      throw err;
    }
  }

  /** Replaces a record durably (temp -> fsync -> rename -> shared directory fsync). */
  async persist(record: MessageRecord): Promise<void> {
    await writeFileAtomic(this.recordPath(record.id), encodeRecord(record), { fsync: this.fsync });
    if (this.fsync) this.fileSyncs++;
    await this.dirs.sync();
  }

  /** Removes a message: the record first (the commit marker), then the content. */
  async remove(id: MessageId | string): Promise<void> {
    await unlink(this.recordPath(id)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    await unlink(this.bodyPath(id)).catch(() => {});
    await this.dirs.sync();
  }

  /** Moves a record (and its content, if any) to quarantine/. */
  async quarantine(id: string, reason: string): Promise<void> {
    const stamp = new Date().toISOString().replace(/[:.]/g, '');
    for (const [from, name] of [[this.recordPath(id), `${id}.json`], [this.bodyPath(id), `${id}.eml`]] as const) {
      await rename(from, join(this.quarantineDir, `${name}`)).catch(async (e: NodeJS.ErrnoException) => {
        if (e.code === 'EEXIST' || e.code === 'ENOTEMPTY') await rename(from, join(this.quarantineDir, `${name}.${stamp}`)).catch(() => {});
      });
    }
    await writeFile(join(this.quarantineDir, `${id}.reason.txt`), `${reason}\n`).catch(() => {});
    if (this.fsync) await fsyncDir(this.quarantineDir).catch(() => {});
    this.logger.warn({ event: 'spool.quarantine', messageId: id, reason }, `spool record ${id} is damaged and was moved to ${this.quarantineDir}: ${reason}`);
  }

  /** Reads every record; damaged ones are quarantined, leftovers of unacknowledged writes removed. */
  async load(): Promise<LoadResult> {
    const recordNames = await readdir(this.recordsDir);
    const messageNames = new Set(await readdir(this.messagesDir));
    const records: MessageRecord[] = [];
    const quarantined: QuarantinedRecord[] = [];
    const ids = new Set<string>();
    const todo: string[] = [];
    for (const name of recordNames) {
      if (name.endsWith('.tmp')) {
        await unlink(join(this.recordsDir, name)).catch(() => {});
        continue;
      }
      if (!name.endsWith('.json')) continue;
      todo.push(name.slice(0, -5));
    }
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= todo.length) return;
        const id = todo[i]!;
        ids.add(id);
        let reason: string | undefined;
        let rec: MessageRecord | undefined;
        try {
          const text = await readFile(this.recordPath(id), 'utf8');
          const d = decodeRecord(text, id);
          if ('error' in d) reason = d.error;
          else if (!messageNames.has(`${id}.eml`)) reason = 'content file is missing';
          else rec = d;
        } catch (err) {
          reason = `unreadable: ${(err as Error).message}`;
        }
        if (rec) records.push(rec);
        else {
          await this.quarantine(id, reason ?? 'unknown');
          quarantined.push({ id, reason: reason ?? 'unknown' });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(64, todo.length) }, worker));
    let orphansRemoved = 0;
    for (const name of messageNames) {
      if (!name.endsWith('.eml')) continue;
      if (!ids.has(name.slice(0, -4))) {
        await unlink(join(this.messagesDir, name)).catch(() => {});
        orphansRemoved++;
      }
    }
    records.sort((a, b) => a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : 1));
    return { records, quarantined, orphansRemoved };
  }
}
