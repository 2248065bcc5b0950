/**
 * Durable file operations: write-to-temp + fsync + rename, directory fsync, and a group committer
 * that lets many concurrent writers share one directory fsync. With `fsync: false` every sync is a
 * no-op (benchmark comparison only; never in production).
 */
import { open, rename, unlink, mkdir } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { GroupCommit } from './group-commit.js';

export interface SyncOptions {
  readonly fsync: boolean;
  /** File mode of a newly written file (default 0o640). */
  readonly mode?: number;
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes data to `path` atomically (temp in the same directory, fsync, rename). Does NOT fsync the directory. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: SyncOptions): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`);
  const fh = await open(tmp, 'w', opts.mode ?? 0o640);
  try {
    await fh.writeFile(data);
    if (opts.fsync) await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o750 });
}

/**
 * Group commit for directory entries: `sync()` resolves after an fsync of every registered directory
 * that STARTED after the call. Callers arriving while an fsync is in flight share the next one
 * (group-commit.ts), so N concurrent commits cost about two directory fsyncs, not N.
 */
export class DirSyncer {
  /** Number of directory-fsync rounds performed (for benchmarks). */
  rounds = 0;
  private readonly group: GroupCommit<void, void>;

  constructor(dirs: readonly string[], private readonly opts: SyncOptions) {
    this.group = new GroupCommit(async () => {
      this.rounds++;
      await Promise.all(dirs.map((d) => fsyncDir(d)));
    });
  }

  sync(): Promise<void> {
    return this.opts.fsync ? this.group.add(undefined) : Promise.resolve();
  }
}
