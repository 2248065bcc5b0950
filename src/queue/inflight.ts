/**
 * The in-flight journal for poison-message detection: "S <id>" is appended before a message is
 * processed and "E <id>" after. The lines are written (not fsync'd) before processing: a crash of
 * the daemon leaves them in the kernel's page cache, which is the failure this guards against.
 * At start-up every id with an unmatched "S" was being processed when the daemon died.
 * "E" lines are held for up to END_FLUSH_MS and go out with the next "S" line (one write instead
 * of two per delivery); a crash inside that window counts a message that had already finished,
 * which only matters for a message that is still queued and crashes again later. The queue notes
 * the deliveries one pump pass starts (`opening`) and has their "S" lines written together
 * (`flushOpenings`) before it runs any of them.
 */
import { closeSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const ROTATE_BYTES = 4 * 1024 * 1024;
const END_FLUSH_MS = 100;

export class InflightJournal {
  private fd: number | undefined;
  private seq = 0;
  private bytes = 0;
  private readonly open = new Set<string>();
  private ends = '';
  /** "S" lines noted by opening() and not yet written. */
  private starts = '';
  private endTimer: NodeJS.Timeout | undefined;

  constructor(private readonly dir: string) {}

  /** Reads earlier journals: the ids that were in flight at a crash. Removes the old files. */
  recover(): Set<string> {
    const crashed = new Set<string>();
    let names: string[] = [];
    try {
      names = readdirSync(this.dir).filter((n) => /^inflight\.\d+\.log$/.test(n));
    } catch {
      return crashed;
    }
    for (const n of names) {
      const starts = new Set<string>();
      for (const line of readFileSync(join(this.dir, n), 'latin1').split('\n')) {
        if (line.startsWith('S ')) starts.add(line.slice(2));
        else if (line.startsWith('E ')) starts.delete(line.slice(2));
      }
      for (const id of starts) crashed.add(id);
      this.seq = Math.max(this.seq, Number(n.split('.')[1]));
    }
    for (const n of names) {
      try { unlinkSync(join(this.dir, n)); } catch { /* gone */ }
    }
    return crashed;
  }

  /** Opens the first or next file when due; true when it did (the open ids are in it then). */
  private ensure(): boolean {
    if (this.fd === undefined || this.bytes > ROTATE_BYTES) {
      const old = this.fd;
      const oldName = join(this.dir, `inflight.${this.seq}.log`);
      this.seq++;
      this.fd = openSync(join(this.dir, `inflight.${this.seq}.log`), 'a', 0o640);
      this.bytes = 0;
      this.ends = ''; // the new file only holds the ids still open
      for (const id of this.open) this.write(`S ${id}\n`);
      if (old !== undefined) {
        closeSync(old);
        try { unlinkSync(oldName); } catch { /* gone */ }
      }
      return true;
    }
    return false;
  }

  private write(line: string): void {
    this.bytes += writeSync(this.fd!, line);
  }

  /**
   * Notes a message about to be processed; `flushOpenings` writes the lines of every message
   * noted since, in one write, and must run before any of them is processed.
   */
  opening(id: string): void {
    this.open.add(id);
    this.starts += `S ${id}\n`;
  }

  flushOpenings(): void {
    if (!this.starts) return;
    const starts = this.starts;
    this.starts = '';
    // A rotation (in ensure) writes every open id into the new file itself, the new ones too.
    if (this.ensure()) return;
    const ends = this.ends;
    this.ends = '';
    this.write(`${ends}${starts}`);
  }

  end(id: string): void {
    if (!this.open.delete(id)) return;
    this.ends += `E ${id}\n`;
    if (!this.endTimer) {
      this.endTimer = setTimeout(() => this.flushEnds(), END_FLUSH_MS);
      this.endTimer.unref();
    }
  }

  private flushEnds(): void {
    this.endTimer = undefined;
    if (!this.ends || this.fd === undefined) return;
    this.ensure();
    const ends = this.ends;
    this.ends = '';
    if (ends) this.write(ends);
  }

  /** Clean shutdown: nothing is in flight any more. */
  close(): void {
    if (this.endTimer) clearTimeout(this.endTimer);
    this.endTimer = undefined;
    this.ends = '';
    this.starts = '';
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
      try { unlinkSync(join(this.dir, `inflight.${this.seq}.log`)); } catch { /* gone */ }
    }
  }
}
