/**
 * The content journal: small new messages are appended to one segment file (queue/v1/journal/
 * <seq>.dat) instead of each getting a file of its own at once. Appends from concurrent sessions
 * are group-committed: one write and one fdatasync per batch, where a file per message costs a
 * create, an fsync and later an unlink each (and ext4 pays for every inode it allocates and frees).
 *
 * The journal is a short-lived home. The spool keeps a journalled message in memory too, delivers
 * from memory, and gives the message its own `messages/<id>.eml` (written, fsync'd, renamed) as
 * soon as it is still queued after its first attempt, has waited a few seconds, or memory runs
 * short; only then does the journal stop holding it. A segment that no longer holds any queued
 * message, and is no longer the one being appended to, is deleted. After a crash the spool reads
 * the segments back (`scan`) and holds the messages whose records are live again, exactly as
 * before the crash: no extra disk space is needed to start, even on a full disk.
 *
 * Framing of one entry: "MYC1" | 20-byte id (ASCII) | length (u32 BE) | CRC-32 of id + content
 * (u32 BE) | content. A torn or damaged entry is skipped: the scan looks for the next entry marker
 * and goes on from there (a write cut short by a full disk is followed by later, good entries). A
 * message whose entry is unreadable is recovered from nowhere, exactly like a content file that
 * never reached the disk (its record goes to quarantine). After a failed write the journal also
 * starts a new segment, so nothing is appended behind a torn entry.
 */
import { crc32 } from 'node:zlib';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from '../platform/fs-atomic.js';
import { GroupCommit } from '../platform/group-commit.js';
import { SegmentFiles } from '../platform/segment-files.js';

const MAGIC = Buffer.from('MYC1', 'latin1');
const ID_BYTES = 20;
const HEADER_BYTES = MAGIC.length + ID_BYTES + 8;
const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;

/** The header of one framed entry (pure; exported for tests). */
export function frameHeader(id: string, content: Buffer): Buffer {
  // From the shared pool (a zeroed Buffer.alloc is a native allocation of its own per entry).
  const h = Buffer.allocUnsafe(HEADER_BYTES).fill(0, MAGIC.length, MAGIC.length + ID_BYTES);
  MAGIC.copy(h, 0);
  h.write(id, MAGIC.length, ID_BYTES, 'latin1');
  h.writeUInt32BE(content.length, MAGIC.length + ID_BYTES);
  h.writeUInt32BE(crc32(content, crc32(h.subarray(MAGIC.length, MAGIC.length + ID_BYTES))), MAGIC.length + ID_BYTES + 4);
  return h;
}

/** The entry at `off` (id and content views into `buf`), or undefined when it is torn or damaged. */
function entryAt(buf: Buffer, off: number): { id: string; content: Buffer; end: number } | undefined {
  if (buf.length - off < HEADER_BYTES || !buf.subarray(off, off + MAGIC.length).equals(MAGIC)) return undefined;
  const idBytes = buf.subarray(off + MAGIC.length, off + MAGIC.length + ID_BYTES);
  const len = buf.readUInt32BE(off + MAGIC.length + ID_BYTES);
  const sum = buf.readUInt32BE(off + MAGIC.length + ID_BYTES + 4);
  const start = off + HEADER_BYTES;
  if (start + len > buf.length) return undefined;
  const content = buf.subarray(start, start + len);
  if (crc32(content, crc32(idBytes)) !== sum) return undefined;
  return { id: idBytes.toString('latin1'), content, end: start + len };
}

/**
 * Reads the entries of one segment image in order. A torn or damaged entry is skipped by looking
 * for the next entry marker. Returns id -> content (views into `buf`) and whether every byte
 * belonged to a good entry.
 */
export function parseSegment(buf: Buffer): { entries: Map<string, Buffer>; clean: boolean } {
  const entries = new Map<string, Buffer>();
  let clean = true;
  let off = 0;
  while (off < buf.length) {
    const e = entryAt(buf, off);
    if (e) {
      entries.set(e.id, e.content);
      off = e.end;
      continue;
    }
    clean = false;
    const next = buf.indexOf(MAGIC, off + 1);
    if (next === -1) break;
    off = next;
  }
  return { entries, clean };
}

export class ContentJournal {
  /** seq -> messages whose only durable copy is in that segment */
  private readonly live = new Map<number, number>();
  private readonly files: SegmentFiles;
  /** A write failed part-way: the next batch goes to a new segment, never behind a torn entry. */
  private torn = false;
  private readonly group = new GroupCommit<Buffer[], number>(
    (frames) => this.commit(frames),
    async () => {
      const cur = this.files.current;
      if (cur && (this.torn || cur.bytes >= this.segmentBytes)) {
        await this.startSegment(cur.seq + 1);
        this.torn = false;
      }
    },
  );
  private closed = false;
  /** fdatasync calls made (benchmarks). */
  syncs = 0;

  constructor(
    readonly dir: string,
    private readonly fsync: boolean,
    private readonly segmentBytes: number = DEFAULT_SEGMENT_BYTES,
  ) {
    this.files = new SegmentFiles(dir, 'dat', fsync);
  }

  /**
   * Start-up: calls `take(id, content, seq)` for every intact entry of the segments left by the
   * last run. `take` returns true for an entry the queue still needs (a live record without a file
   * of its own); the segment is then kept until those messages are released, as if they had just
   * been appended. `open()` deletes the segments nobody needs.
   */
  async scan(take: (id: string, content: Buffer, seq: number) => boolean): Promise<{ segments: number; damaged: number }> {
    let damaged = 0;
    const names = await this.files.list();
    for (const { name, seq } of names) {
      const { entries, clean } = parseSegment(await readFile(join(this.dir, name)));
      if (!clean) damaged++;
      let kept = 0;
      for (const [id, content] of entries) if (take(id, content, seq)) kept++;
      if (kept) this.live.set(seq, kept);
    }
    return { segments: names.length, damaged };
  }

  /** Deletes the old segments that hold nothing still queued (after `scan`) and starts a fresh one for appends. */
  async open(): Promise<void> {
    const old = await this.files.list();
    let deleted = 0;
    for (const { seq } of old) {
      if (this.live.has(seq)) continue;
      await this.files.remove(seq);
      deleted++;
    }
    if (deleted && this.fsync) await fsyncDir(this.dir);
    await this.startSegment((old.at(-1)?.seq ?? 0) + 1);
  }

  private async startSegment(seq: number): Promise<void> {
    const old = await this.files.start(seq);
    this.live.set(seq, 0);
    if (old !== undefined) this.dropIfDone(old);
  }

  /** Appends one message; resolves with its segment number once it is durable. */
  append(id: string, content: Buffer): Promise<number> {
    if (this.closed) return Promise.reject(new Error('content journal closed'));
    return this.group.add([frameHeader(id, content), content]);
  }

  /** One batch: every entry in one writev, one fdatasync; the segment then holds them all. */
  private async commit(frames: Buffer[][]): Promise<number> {
    if (this.torn) throw new Error('content journal: no usable segment after a failed write');
    let seq: number;
    try {
      ({ seq } = await this.files.append(frames.flat()));
    } catch (err) {
      this.torn = true;
      throw err;
    }
    if (this.fsync) this.syncs++;
    this.live.set(seq, (this.live.get(seq) ?? 0) + frames.length);
    return seq;
  }

  /** A message appended to segment `seq` no longer needs it (removed, or has its own file now). */
  release(seq: number): void {
    const n = this.live.get(seq);
    if (n === undefined) return;
    this.live.set(seq, n - 1);
    this.dropIfDone(seq);
  }

  private dropIfDone(seq: number): void {
    if (seq === this.files.current?.seq || (this.live.get(seq) ?? 0) > 0) return;
    this.live.delete(seq);
    void this.files.remove(seq);
  }

  /** Number of segment files kept (tests, metrics). */
  get segmentCount(): number {
    return this.live.size;
  }

  async close(): Promise<void> {
    await this.group.drained();
    this.closed = true;
    await this.files.close();
  }
}
