/**
 * A directory of numbered append-only segment files, `<seq, 10 digits>.<ext>`, one of them open
 * for appends at a time: the layout the record log (`.jsonl`) and the content journal (`.dat`)
 * share. What a segment holds and when it may go is the owner's business.
 */
import { open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from './fs-atomic.js';
import { appendDurably } from './group-commit.js';

export class SegmentFiles {
  /** The segment being appended to. */
  current: { readonly seq: number; readonly fh: FileHandle; bytes: number } | undefined;
  private readonly pattern: RegExp;

  constructor(
    readonly dir: string,
    private readonly ext: string,
    private readonly fsync: boolean,
  ) {
    this.pattern = new RegExp(`^(\\d{10})\\.${ext}$`);
  }

  pathOf(seq: number): string {
    return join(this.dir, `${String(seq).padStart(10, '0')}.${this.ext}`);
  }

  /** The segments on disk, oldest first. */
  async list(): Promise<{ seq: number; name: string }[]> {
    const found: { seq: number; name: string }[] = [];
    for (const name of await readdir(this.dir)) {
      const m = this.pattern.exec(name);
      if (m) found.push({ seq: Number(m[1]), name });
    }
    return found.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Opens segment `seq` for appends (its directory entry fsync'd first), makes it the current one
   * and closes the previous one, whose number it returns.
   */
  async start(seq: number): Promise<number | undefined> {
    const fh = await open(this.pathOf(seq), 'a', 0o640);
    if (this.fsync) {
      await fsyncDir(this.dir).catch(async (err: unknown) => {
        await fh.close().catch(() => {});
        throw err;
      });
    }
    const old = this.current;
    this.current = { seq, fh, bytes: 0 };
    if (!old) return undefined;
    await old.fh.close().catch(() => {});
    return old.seq;
  }

  /** Appends to the current segment, durably when fsync is on; returns that segment. */
  async append(bufs: readonly Buffer[]): Promise<{ readonly seq: number; bytes: number }> {
    const cur = this.current;
    if (!cur) throw new Error(`no open segment in ${this.dir}`);
    cur.bytes += await appendDurably(cur.fh, bufs, this.fsync);
    return cur;
  }

  /** Deletes a segment that is no longer needed (a missing file is fine). */
  async remove(seq: number): Promise<void> {
    await unlink(this.pathOf(seq)).catch(() => {});
  }

  async close(): Promise<void> {
    await this.current?.fh.close().catch(() => {});
    this.current = undefined;
  }
}
