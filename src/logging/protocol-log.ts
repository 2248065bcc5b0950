/**
 * The protocol log writer (reference 5.1): one file set per service, shared by all connectors of
 * that service —
 *   FrontEndReceive -> FrontEnd/ProtocolLog/SmtpReceive/RECV*.LOG
 *   HubReceive      -> Hub/ProtocolLog/SmtpReceive/RECV*.LOG
 *   HubSend         -> Hub/ProtocolLog/SmtpSend/SEND*.LOG
 *   Delivery        -> Delivery/ProtocolLog/SEND*.LOG
 * under server.logDir. A new file starts each UTC hour and whenever the current one would exceed
 * the maximum file size; each file opens with the #-header lines. Writes are buffered and flushed
 * at least every 250 ms, so `tail -f` follows conversations as they happen. Old files are pruned by
 * age and by total directory size (oldest first, never the file being written). Write errors are
 * logged once per burst and never thrown into the SMTP session that produced the event.
 */
import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ProtocolEvent, ProtocolLogService, ProtocolLogSink } from '../model/protocol.js';
import type { TransportService } from '../config/schema.js';
import { formatProtocolEvent, parseProtocolLogFileName, protocolLogFileName, protocolLogHeader, type ProtocolLogType } from './protocol-csv.js';

export const PROTOCOL_LOG_DIRS: Readonly<Record<ProtocolLogService, string>> = {
  FrontEndReceive: join('FrontEnd', 'ProtocolLog', 'SmtpReceive'),
  HubReceive: join('Hub', 'ProtocolLog', 'SmtpReceive'),
  HubSend: join('Hub', 'ProtocolLog', 'SmtpSend'),
  Delivery: join('Delivery', 'ProtocolLog'),
};

const FLUSH_MS = 250;
const MAX_BUFFERED_LINES = 10_000;

interface Limits {
  readonly maxAgeMs: number;
  readonly maxDirectorySize: number;
  readonly maxFileSize: number;
}

export interface ProtocolLogWriter extends ProtocolLogSink {
  /** Writes everything buffered so far. */
  flush(): Promise<void>;
  /** Flushes and closes the files; later writes are dropped. */
  close(): Promise<void>;
}

class ServiceLog {
  readonly #dir: string;
  readonly #prefix: 'RECV' | 'SEND';
  readonly #logType: ProtocolLogType;
  #lines: string[] = [];
  #dropped = 0;
  #file: { fh: FileHandle; hour: string; instance: number; size: number; path: string } | undefined;
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #firstAt: Date | undefined;
  #errorLogged = false;

  constructor(
    root: string,
    service: ProtocolLogService,
    private readonly limits: Limits,
    private readonly logger: Logger,
  ) {
    this.#dir = join(root, PROTOCOL_LOG_DIRS[service]);
    const receive = service === 'FrontEndReceive' || service === 'HubReceive';
    this.#prefix = receive ? 'RECV' : 'SEND';
    this.#logType = receive ? 'SMTP Receive Protocol Log' : 'SMTP Send Protocol Log';
  }

  write(e: ProtocolEvent): void {
    if (this.#lines.length >= MAX_BUFFERED_LINES) {
      this.#dropped++;
      return;
    }
    this.#firstAt ??= e.timestamp;
    this.#lines.push(formatProtocolEvent(e));
    if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.flush();
      }, FLUSH_MS);
      this.#timer.unref();
    }
  }

  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const lines = this.#lines;
    const at = this.#firstAt ?? new Date();
    this.#lines = [];
    this.#firstAt = undefined;
    if (this.#dropped) {
      this.logger.warn({ code: 'PROTOCOL_LOG_DROPPED', dropped: this.#dropped, dir: this.#dir }, 'protocol log buffer full; events dropped');
      this.#dropped = 0;
    }
    if (lines.length === 0) return this.#chain;
    this.#chain = this.#chain
      .then(() => this.#append(lines.join(''), at))
      .then(
        () => {
          this.#errorLogged = false;
        },
        (err: unknown) => {
          if (!this.#errorLogged) this.logger.error({ code: 'PROTOCOL_LOG_WRITE_FAILED', err, dir: this.#dir }, 'cannot write protocol log');
          this.#errorLogged = true;
        },
      );
    return this.#chain;
  }

  async #append(text: string, at: Date): Promise<void> {
    const bytes = Buffer.byteLength(text);
    const hour = protocolLogFileName(this.#prefix, at, 1).slice(4, 14);
    if (this.#file && (this.#file.hour !== hour || (this.#file.size > 0 && this.#file.size + bytes > this.limits.maxFileSize))) {
      const next = this.#file.hour === hour ? this.#file.instance + 1 : 1;
      await this.#file.fh.close();
      this.#file = undefined;
      await this.#openFile(at, hour, next, true);
    }
    if (!this.#file) await this.#openFile(at, hour, undefined, false);
    const f = this.#file!;
    await f.fh.write(text);
    f.size += bytes;
  }

  /** Opens the file for `hour`: instance `forced`, or the newest existing one if it still has room. */
  async #openFile(at: Date, hour: string, forced: number | undefined, rolled: boolean): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    let instance = forced ?? 1;
    if (forced === undefined) {
      const existing = (await readdir(this.#dir)).map(parseProtocolLogFileName).filter((p) => p && p.prefix === this.#prefix && p.hour === hour);
      const max = existing.reduce((m, p) => Math.max(m, p!.instance), 0);
      if (max > 0) {
        const st = await stat(join(this.#dir, protocolLogFileName(this.#prefix, at, max)));
        instance = st.size < this.limits.maxFileSize ? max : max + 1;
      }
    }
    const path = join(this.#dir, protocolLogFileName(this.#prefix, at, instance));
    const fh = await open(path, 'a', 0o640);
    let size = (await fh.stat()).size;
    if (size === 0) {
      const header = protocolLogHeader(this.#logType, at);
      await fh.write(header);
      size = Buffer.byteLength(header);
    }
    this.#file = { fh, hour, instance, size, path };
    if (rolled || forced === undefined) await this.#prune();
  }

  async #prune(): Promise<void> {
    const now = Date.now();
    const names = (await readdir(this.#dir)).filter((n) => parseProtocolLogFileName(n)?.prefix === this.#prefix);
    const files: { path: string; mtimeMs: number; size: number }[] = [];
    for (const n of names) {
      const path = join(this.#dir, n);
      if (path === this.#file?.path) continue;
      try {
        const st = await stat(path);
        files.push({ path, mtimeMs: st.mtimeMs, size: st.size });
      } catch {
        /* removed meanwhile */
      }
    }
    files.sort((a, b) => a.mtimeMs - b.mtimeMs);
    let total = files.reduce((s, f) => s + f.size, this.#file?.size ?? 0);
    for (const f of files) {
      const tooOld = this.limits.maxAgeMs > 0 && Number.isFinite(this.limits.maxAgeMs) && now - f.mtimeMs > this.limits.maxAgeMs;
      const tooBig = total > this.limits.maxDirectorySize;
      if (!tooOld && !tooBig) continue;
      await unlink(f.path).catch(() => {});
      total -= f.size;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    await this.#chain;
    if (this.#file) {
      await this.#file.fh.close().catch(() => {});
      this.#file = undefined;
    }
  }
}

/**
 * Builds the writer for all four services. `transportService` supplies the rotation limits
 * (receive limits for the receive services, send limits for send and delivery).
 */
export function createProtocolLog(
  logDir: string,
  transportService: Pick<
    TransportService,
    | 'receiveProtocolLogMaxAge'
    | 'receiveProtocolLogMaxDirectorySize'
    | 'receiveProtocolLogMaxFileSize'
    | 'sendProtocolLogMaxAge'
    | 'sendProtocolLogMaxDirectorySize'
    | 'sendProtocolLogMaxFileSize'
  >,
  logger: Logger,
): ProtocolLogWriter {
  const receive: Limits = {
    maxAgeMs: transportService.receiveProtocolLogMaxAge,
    maxDirectorySize: transportService.receiveProtocolLogMaxDirectorySize,
    maxFileSize: transportService.receiveProtocolLogMaxFileSize,
  };
  const send: Limits = {
    maxAgeMs: transportService.sendProtocolLogMaxAge,
    maxDirectorySize: transportService.sendProtocolLogMaxDirectorySize,
    maxFileSize: transportService.sendProtocolLogMaxFileSize,
  };
  const logs = new Map<ProtocolLogService, ServiceLog>();
  let closed = false;
  const get = (service: ProtocolLogService): ServiceLog => {
    let l = logs.get(service);
    if (!l) {
      l = new ServiceLog(logDir, service, service === 'FrontEndReceive' || service === 'HubReceive' ? receive : send, logger);
      logs.set(service, l);
    }
    return l;
  };
  return {
    write(service, event) {
      if (!closed) get(service).write(event);
    },
    async flush() {
      await Promise.all([...logs.values()].map((l) => l.flush()));
    },
    async close() {
      closed = true;
      await Promise.all([...logs.values()].map((l) => l.close()));
    },
  };
}
