/**
 * The record log: every version of every queue record, appended as one JSON line to the current
 * segment file (queue/v1/log/<seq>.jsonl), plus {"removed": id} lines when a message leaves the
 * queue. The last line for an id wins. Appends from concurrent callers are group-committed: one
 * write() and one fdatasync per batch, and each append resolves only once its batch is durable.
 *
 * Segments rotate at a size threshold; on rotation the live records still held by older segments
 * are re-appended to the new one (the owner supplies their current text), after which the old
 * segments are deleted. A torn last line (a crash during a write that was never acknowledged) is
 * ignored at replay; a damaged line anywhere else is reported for quarantine.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { GroupCommit } from '../platform/group-commit.js';
import { SegmentFiles } from '../platform/segment-files.js';

export interface LogEntry {
  readonly id: string;
  /** The record as one line of JSON (no newline), or undefined for a removal. */
  readonly text: string | undefined;
}

export interface ReplayResult {
  /** id -> latest record (parsed JSON, not yet validated) */
  readonly records: Map<string, unknown>;
  /** Damaged lines: raw text, where it was, and the id when one can be read from it. */
  readonly damaged: { readonly id?: string; readonly where: string; readonly raw: string; readonly reason: string }[];
}

const NEWLINE = Buffer.from('\n');
const MIN_ROTATE_BYTES = 16 * 1024 * 1024;

export class RecordLog {
  private segments = new Map<number, { live: number }>();
  private where = new Map<string, number>();
  private readonly files: SegmentFiles;
  private readonly group = new GroupCommit<{ readonly buf: Buffer; readonly entries: readonly LogEntry[] }, void>(
    (batch) => this.commit(batch),
    () => this.maybeRotate(),
  );
  private closed = false;
  /** A write failed part-way: the next batch starts with a newline, so the torn line stays alone. */
  private torn = false;
  /** fdatasync calls made (benchmarks). */
  syncs = 0;

  constructor(
    readonly dir: string,
    private readonly fsync: boolean,
    /** Current text of a live record, for compaction; undefined when it is gone. */
    private readonly liveText: (id: string) => string | undefined,
    /** Smallest segment size that triggers rotation (tests use a small one). */
    private readonly minRotateBytes: number = MIN_ROTATE_BYTES,
  ) {
    this.files = new SegmentFiles(dir, 'jsonl', fsync);
  }

  /**
   * Reads every segment in order (in 1 MB chunks, so a large log is never held as one string);
   * returns the latest parsed record object per id. The caller then calls `open()`.
   */
  async replay(): Promise<ReplayResult> {
    const records = new Map<string, unknown>();
    const seqOf = new Map<string, number>();
    const damaged: ReplayResult['damaged'][number][] = [];
    for (const { seq, name } of await this.files.list()) {
      this.segments.set(seq, { live: 0 });
      const fh = await open(join(this.dir, name), 'r');
      try {
        let carry: Buffer = Buffer.alloc(0);
        let lineNo = 0;
        const chunk = Buffer.alloc(1024 * 1024);
        for (;;) {
          const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
          if (bytesRead === 0) break;
          const buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
          let start = 0;
          let nl = buf.indexOf(10, start);
          while (nl >= 0) {
            lineNo++;
            if (nl > start) this.replayLine(buf.toString('utf8', start, nl), `${name}:${lineNo}`, seq, records, seqOf, damaged);
            start = nl + 1;
            nl = buf.indexOf(10, start);
          }
          carry = Buffer.from(buf.subarray(start)); // copy: `chunk` is reused
        }
        // A non-empty `carry` is a torn tail: a write that was never acknowledged.
      } finally {
        await fh.close();
      }
    }
    for (const [id, seq] of seqOf) {
      this.where.set(id, seq);
      this.segments.get(seq)!.live++;
    }
    return { records, damaged };
  }

  private replayLine(line: string, where: string, seq: number, records: Map<string, unknown>, seqOf: Map<string, number>, damaged: ReplayResult['damaged'][number][]): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      const m = /"id":"([0-9A-F]{20})"/.exec(line);
      damaged.push({ ...(m ? { id: m[1]! } : {}), where, raw: line, reason: `not JSON (${(err as Error).message})` });
      return;
    }
    const obj = parsed as { removed?: unknown; id?: unknown };
    if (typeof obj.removed === 'string') {
      records.delete(obj.removed);
      seqOf.delete(obj.removed);
    } else if (typeof obj.id === 'string') {
      records.set(obj.id, parsed);
      seqOf.set(obj.id, seq);
    } else {
      damaged.push({ where, raw: line, reason: 'neither a record nor a removal' });
    }
  }

  /** Forgets an id found damaged or dropped at load (its line stays until its segment goes). */
  forget(id: string): void {
    const seq = this.where.get(id);
    if (seq === undefined) return;
    this.where.delete(id);
    const s = this.segments.get(seq);
    if (s) s.live--;
  }

  /** Opens a fresh segment for appends. */
  async open(): Promise<void> {
    const max = Math.max(0, ...this.segments.keys());
    await this.startSegment(max + 1);
  }

  private async startSegment(seq: number): Promise<void> {
    await this.files.start(seq);
    this.segments.set(seq, { live: 0 });
  }

  /** Appends entries; resolves when they are durable. */
  append(entries: readonly LogEntry[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('record log closed'));
    const buf = Buffer.from(entries.map((e) => `${e.text ?? JSON.stringify({ removed: e.id })}\n`).join(''), 'utf8');
    return this.group.add({ buf, entries });
  }

  /** One batch: one write and one fdatasync, then the entries count for the current segment. */
  private async commit(batch: readonly { readonly buf: Buffer; readonly entries: readonly LogEntry[] }[]): Promise<void> {
    const bufs = batch.map((p) => p.buf);
    // After a short write (a full disk) the file ends in the middle of a line; without this the
    // next record would be glued to it and read back as part of one damaged line.
    if (this.torn) bufs.unshift(NEWLINE);
    let seq: number;
    try {
      ({ seq } = await this.files.append(bufs));
    } catch (err) {
      this.torn = true;
      throw err;
    }
    this.torn = false;
    if (this.fsync) this.syncs++;
    for (const p of batch) for (const e of p.entries) this.account(e, seq);
  }

  private account(e: LogEntry, seq: number): void {
    const prev = this.where.get(e.id);
    if (prev !== undefined) {
      const s = this.segments.get(prev);
      if (s) s.live--;
    }
    if (e.text === undefined) {
      this.where.delete(e.id);
    } else {
      this.where.set(e.id, seq);
      this.segments.get(seq)!.live++;
    }
  }

  /** Rotation + compaction: re-append live records of older segments, then delete those segments. */
  private async maybeRotate(): Promise<void> {
    const cur = this.files.current;
    if (!cur) return;
    const threshold = Math.max(this.minRotateBytes, 2 * this.liveBytesEstimate());
    if (cur.bytes < threshold) return;
    await this.startSegment(cur.seq + 1);
    const newSeq = this.files.current!.seq;
    const moved: LogEntry[] = [];
    for (const [id, seq] of this.where) {
      if (seq === newSeq) continue;
      const text = this.liveText(id);
      moved.push({ id, text });
    }
    if (moved.length) {
      const buf = Buffer.from(moved.map((e) => `${e.text ?? JSON.stringify({ removed: e.id })}\n`).join(''), 'utf8');
      await this.files.append([buf]);
      for (const e of moved) this.account(e, newSeq);
    }
    for (const [seq, s] of [...this.segments]) {
      if (seq >= newSeq) continue;
      if (s.live > 0) continue;
      await this.files.remove(seq);
      this.segments.delete(seq);
    }
  }

  private liveBytesEstimate(): number {
    // Average record size times live records; cheap and good enough for a rotation threshold.
    return this.where.size * 800;
  }

  /** Number of segment files (tests). */
  get segmentCount(): number {
    return this.segments.size;
  }

  async close(): Promise<void> {
    await this.group.drained();
    this.closed = true;
    await this.files.close();
  }
}
