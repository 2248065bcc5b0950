/**
 * Group commit for append-only files (the record log, the content journal): appends from
 * concurrent callers that arrive while one write + fdatasync is in flight wait and share the next
 * one, so N concurrent commits cost about two syncs, not N. Each caller's promise resolves with
 * the batch's result once the batch is durable, or rejects with the batch's error. Also the
 * writers that finish a short write (`appendDurably`, `writeAllSync`).
 */
import { writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

export class GroupCommit<T, R> {
  private pending: { readonly item: T; readonly resolve: (r: R) => void; readonly reject: (e: unknown) => void }[] = [];
  private running = false;

  constructor(
    /** Writes and syncs one batch (in arrival order). */
    private readonly commitBatch: (items: T[]) => Promise<R>,
    /** Runs after every batch, success or not (rotation); its errors are ignored. */
    private readonly afterBatch?: () => Promise<void>,
  ) {}

  add(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        // Let the current tick's callers join the batch.
        setImmediate(() => void this.run());
      }
    });
  }

  /** True while a batch is being written or appends are waiting. */
  get busy(): boolean {
    return this.running || this.pending.length > 0;
  }

  /** Resolves once nothing is being written or waiting (before closing the file). */
  async drained(): Promise<void> {
    while (this.busy) await new Promise((r) => setTimeout(r, 5));
  }

  private async run(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    try {
      const result = await this.commitBatch(batch.map((p) => p.item));
      for (const p of batch) p.resolve(result);
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
    try {
      await this.afterBatch?.();
    } catch {
      /* retried after the next batch */
    }
    if (this.pending.length) setImmediate(() => void this.run());
    else this.running = false;
  }
}

/** The part of `bufs` not yet written once `done` bytes of them have gone out (views, no copy; exported for tests). */
export function unwritten(bufs: readonly Buffer[], done: number): Buffer[] {
  let skip = done;
  const rest: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) skip -= b.length;
    else {
      rest.push(skip ? b.subarray(skip) : b);
      skip = 0;
    }
  }
  return rest;
}

function totalLength(bufs: readonly Buffer[]): number {
  let total = 0;
  for (const b of bufs) total += b.length;
  return total;
}

/**
 * Writes all of `bufs` at the end of a file (resuming short writes), then fdatasyncs if asked:
 * an append-mode file, or one written only in order from its start (writes go to the current
 * position). Returns the bytes written.
 */
export async function appendDurably(fh: FileHandle, bufs: readonly Buffer[], fsync: boolean): Promise<number> {
  const total = totalLength(bufs);
  let done = 0;
  while (done < total) done += (await fh.writev(unwritten(bufs, done))).bytesWritten;
  if (fsync) await fh.datasync();
  return total;
}

/** The synchronous counterpart without the sync: writes all of `bufs` to `fd` (resuming short writes); returns the bytes written. */
export function writeAllSync(fd: number, bufs: readonly Buffer[]): number {
  const total = totalLength(bufs);
  let done = 0;
  while (done < total) done += writevSync(fd, unwritten(bufs, done));
  return total;
}
