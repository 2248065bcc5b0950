/**
 * Exchange's message tracking log (reference 6): MSGTRK<yyyymmddhh>-<n>.LOG files under
 * <logDir>/MessageTracking, UTF-8 with a BOM, the #-header lines and the 30-field CSV layout of
 * current builds. Fields Mailyard has no value for stay empty. Multiple recipients and their
 * statuses are ';'-separated in the same order. A new file starts each UTC hour and when the file
 * would exceed messageTrackingLogMaxFileSize; old files are pruned by age and folder size.
 * Writes are buffered and flushed within 250 ms; errors are logged, never thrown at the caller.
 *
 * `tracking` holds the typed event builders (received, sent, delivered, deferred, failed, ...)
 * for code outside the queue that wants to emit without assembling a TrackingEvent by hand.
 */
import { mkdirSync, openSync, writeSync, closeSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { TrackingEvent, TrackingEventId, TrackingSink } from '../model/tracking.js';
import type { Config } from '../config/defaults.js';
import { writeAllSync } from '../platform/group-commit.js';
import { csvField } from './protocol-csv.js';

export const TRACKING_FIELDS = [
  'date-time', 'client-ip', 'client-hostname', 'server-ip', 'server-hostname', 'source-context', 'connector-id', 'source', 'event-id',
  'internal-message-id', 'message-id', 'network-message-id', 'recipient-address', 'recipient-status', 'total-bytes', 'recipient-count',
  'related-recipient-address', 'reference', 'message-subject', 'sender-address', 'return-path', 'message-info', 'directionality',
  'tenant-id', 'original-client-ip', 'original-server-ip', 'custom-data', 'transport-traffic-type', 'log-id', 'schema-version',
] as const;

export const TRACKING_SCHEMA_VERSION = '15.02.0000.000';
export const TRACKING_DIR = 'MessageTracking';

export function trackingHeader(created: Date): string {
  return [
    '#Software: Mailyard',
    `#Version: ${TRACKING_SCHEMA_VERSION}`,
    '#Log-type: Message Tracking Log',
    `#Date: ${created.toISOString()}`,
    `#Fields: ${TRACKING_FIELDS.join(',')}`,
    '',
  ].join('\r\n');
}

/** One value per field of a field list (a tuple of the same length). */
type FieldValues<T extends readonly string[]> = { -readonly [K in keyof T]: string | number | undefined };

/** One CSV line (CRLF-terminated) for an event. Pure. */
export function formatTrackingEvent(e: TrackingEvent, opts: { subjectLogging?: boolean } = {}): string {
  const sender = e.sender;
  // In TRACKING_FIELDS order; the tuple type keeps the count at 30.
  const values: FieldValues<typeof TRACKING_FIELDS> = [
    e.timestamp.toISOString(), // date-time
    e.clientIp, // client-ip
    e.clientHostname, // client-hostname
    e.serverIp, // server-ip
    e.serverHostname, // server-hostname
    e.sourceContext, // source-context
    e.connectorId, // connector-id
    e.source, // source
    e.eventId, // event-id
    e.messageId, // internal-message-id
    e.internetMessageId, // message-id
    e.messageId, // network-message-id
    e.recipients.length === 1 ? e.recipients[0] : e.recipients.join(';'), // recipient-address
    e.recipientStatus?.join(';'), // recipient-status
    e.totalBytes, // total-bytes
    e.recipients.length, // recipient-count
    e.relatedRecipientAddress, // related-recipient-address
    e.reference, // reference
    opts.subjectLogging === false ? undefined : e.subject, // message-subject
    sender, // sender-address
    sender === '' ? '<>' : sender, // return-path
    undefined, // message-info
    'Undefined', // directionality
    undefined, // tenant-id
    e.clientIp, // original-client-ip
    e.serverIp, // original-server-ip
    undefined, // custom-data
    'Email', // transport-traffic-type
    undefined, // log-id
    TRACKING_SCHEMA_VERSION, // schema-version
  ];
  // One join makes the line flat at once (a chain of += would be flattened again when written).
  return `${values.map(csvField).join(',')}\r\n`;
}

export function trackingFileName(at: Date, instance: number): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `MSGTRK${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}${p(at.getUTCHours())}-${instance}.LOG`;
}

const FILE_RE = /^MSGTRK(\d{10})-(\d+)\.LOG$/;

export interface TrackingLogOptions {
  readonly dir: string;
  readonly enabled: boolean;
  readonly maxFileSize: number;
  readonly maxAgeMs: number;
  readonly maxDirectorySize: number;
  readonly logger: Logger;
  readonly now?: () => Date;
}

export function trackingLogOptions(config: Config, logger: Logger): TrackingLogOptions {
  const ts = config.transportService;
  return {
    dir: join(config.server.logDir, TRACKING_DIR),
    enabled: ts.messageTrackingLogEnabled,
    maxFileSize: ts.messageTrackingLogMaxFileSize,
    maxAgeMs: ts.messageTrackingLogMaxAge,
    maxDirectorySize: ts.messageTrackingLogMaxDirectorySize,
    logger,
  };
}

/** Bytes of one pending-lines chunk; a line longer than a chunk gets a chunk of its own. */
const CHUNK_BYTES = 64 * 1024;

/**
 * The tracking log writer: a TrackingSink that appends to the MSGTRK files. Each line is encoded
 * to UTF-8 into a chunk of pending bytes as it is emitted, so the line's string dies at once
 * instead of living (and being copied by the garbage collector) until the next flush.
 */
export class MessageTrackingLog implements TrackingSink {
  /** Full chunks of pending bytes, then `chunk` filled up to `used`. */
  private full: Buffer[] = [];
  private chunk: Buffer | undefined;
  private used = 0;
  private pendingBytes = 0;
  /** Where each pending line ends, counted over all pending bytes (for a file roll mid-batch). */
  private lineEnds: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private file: { fd: number; hour: string; instance: number; size: number } | undefined;
  private errorLogged = false;
  private closed = false;

  constructor(private readonly opts: TrackingLogOptions) {}

  emit(event: TrackingEvent): void {
    if (!this.opts.enabled || this.closed) return;
    this.append(formatTrackingEvent(event));
    if (this.lineEnds.length > 5000) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), 250);
      this.timer.unref?.();
    }
  }

  private append(line: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    if (!this.chunk || this.chunk.length - this.used < 3 * line.length) {
      if (this.chunk && this.used > 0) this.full.push(this.chunk.subarray(0, this.used));
      this.chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, 3 * line.length));
      this.used = 0;
    }
    const n = this.chunk.write(line, this.used, 'utf8');
    this.used += n;
    this.pendingBytes += n;
    this.lineEnds.push(this.pendingBytes);
  }

  /**
   * Takes the pending bytes (one Buffer) and line ends, leaving nothing pending. The bytes may be
   * a view of the current chunk, which the next line overwrites: use them before that.
   */
  private takePending(): { bytes: Buffer; ends: number[] } {
    const parts = this.chunk && this.used > 0 ? [...this.full, this.chunk.subarray(0, this.used)] : this.full;
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.pendingBytes);
    const ends = this.lineEnds;
    this.full = [];
    this.used = 0;
    this.pendingBytes = 0;
    this.lineEnds = [];
    return { bytes, ends };
  }

  /** Writes buffered lines now (synchronously). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.lineEnds.length) return;
    const { bytes, ends } = this.takePending();
    try {
      const now = (this.opts.now ?? (() => new Date()))();
      const hour = trackingFileName(now, 1).slice(6, 16);
      // The usual case: everything fits in the current file, one write.
      const open = this.file;
      if (open && open.hour === hour && open.size + bytes.length <= this.opts.maxFileSize) {
        open.size += writeAllSync(open.fd, [bytes]);
        return;
      }
      // One write per run of lines that go to the same file (a file rolls at maxFileSize).
      let runStart = 0;
      let start = 0;
      for (const end of ends) {
        const f = this.file;
        const lineBytes = end - start;
        if (start > runStart && !(f && f.hour === hour && f.size + (end - runStart) <= this.opts.maxFileSize)) {
          f!.size += writeAllSync(f!.fd, [bytes.subarray(runStart, start)]);
          runStart = start;
        }
        if (start === runStart) this.fileFor(now, lineBytes);
        start = end;
      }
      if (start > runStart) this.file!.size += writeAllSync(this.file!.fd, [bytes.subarray(runStart, start)]);
    } catch (err) {
      if (!this.errorLogged) this.opts.logger.error({ err, dir: this.opts.dir }, 'cannot write the message tracking log');
      this.errorLogged = true;
    }
  }

  private fileFor(now: Date, bytes: number): { fd: number; hour: string; instance: number; size: number } {
    const hour = trackingFileName(now, 1).slice(6, 16);
    if (this.file && this.file.hour === hour && this.file.size + bytes <= this.opts.maxFileSize) return this.file;
    let instance = 1;
    if (this.file) {
      closeSync(this.file.fd);
      if (this.file.hour === hour) instance = this.file.instance + 1;
    }
    mkdirSync(this.opts.dir, { recursive: true });
    if (!this.file) {
      // Continue after the highest instance of this hour left by an earlier run.
      for (const n of readdirSync(this.opts.dir)) {
        const m = FILE_RE.exec(n);
        if (m && m[1] === hour) instance = Math.max(instance, Number(m[2]) + 1);
      }
    }
    const path = join(this.opts.dir, trackingFileName(now, instance));
    const fd = openSync(path, 'a', 0o640);
    const header = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(trackingHeader(now))]);
    const size = writeSync(fd, header);
    this.file = { fd, hour, instance, size };
    this.prune(now, path);
    return this.file;
  }

  private prune(now: Date, current: string): void {
    try {
      const files = readdirSync(this.opts.dir)
        .filter((n) => FILE_RE.test(n))
        .map((n) => {
          const p = join(this.opts.dir, n);
          const st = statSync(p);
          return { p, mtime: st.mtimeMs, size: st.size };
        })
        .sort((a, b) => a.mtime - b.mtime);
      let total = files.reduce((s, f) => s + f.size, 0);
      for (const f of files) {
        if (f.p === current) continue;
        const old = this.opts.maxAgeMs > 0 && Number.isFinite(this.opts.maxAgeMs) && now.getTime() - f.mtime > this.opts.maxAgeMs;
        if (old || total > this.opts.maxDirectorySize) {
          unlinkSync(f.p);
          total -= f.size;
        }
      }
    } catch {
      /* pruning is best effort */
    }
  }

  close(): void {
    this.flush();
    this.closed = true;
    if (this.file) closeSync(this.file.fd);
    this.file = undefined;
  }
}

type Base = Omit<TrackingEvent, 'eventId' | 'source' | 'timestamp'> & { timestamp?: Date };

function make(eventId: TrackingEventId, source: TrackingEvent['source'], b: Base): TrackingEvent {
  return { ...b, timestamp: b.timestamp ?? new Date(), eventId, source };
}

/** Typed builders: one function per event, so callers cannot misspell an event id or source. */
export const tracking = {
  received: (b: Base, source: 'SMTP' | 'PICKUP' = 'SMTP') => make('RECEIVE', source, b),
  submitted: (b: Base) => make('SUBMIT', 'QUEUE', b),
  resolved: (b: Base) => make('RESOLVE', 'ROUTING', b),
  expanded: (b: Base) => make('EXPAND', 'ROUTING', b),
  redirected: (b: Base) => make('REDIRECT', 'ROUTING', b),
  sent: (b: Base) => make('SEND', 'SMTP', b),
  delivered: (b: Base, source: 'STOREDRIVER' | 'AGENT' = 'STOREDRIVER') => make('DELIVER', source, b),
  transferred: (b: Base) => make('TRANSFER', 'AGENT', b),
  deferred: (b: Base) => make('DEFER', 'QUEUE', b),
  failed: (b: Base, source: TrackingEvent['source'] = 'SMTP') => make('FAIL', source, b),
  dsn: (b: Base) => make('DSN', 'DSN', b),
  dropped: (b: Base) => make('DROP', 'QUEUE', b),
  poison: (b: Base) => make('POISONMESSAGE', 'QUEUE', b),
  badmail: (b: Base, source: 'PICKUP' | 'QUEUE' = 'PICKUP') => make('BADMAIL', source, b),
  resubmitted: (b: Base) => make('RESUBMIT', 'QUEUE', b),
  agentInfo: (b: Base) => make('AGENTINFO', 'AGENT', b),
};

/** Fans one event out to several sinks (e.g. the tracking log and metrics). */
export function teeTracking(...sinks: TrackingSink[]): TrackingSink {
  return { emit: (e) => { for (const s of sinks) s.emit(e); } };
}
