/**
 * `mailyard tracking search`: reads the MSGTRK files under <logDir>/MessageTracking and returns
 * the events matching every filter given (Get-MessageTrackingLog's semantics: -Start inclusive,
 * -End exclusive, -Sender / -Recipients exact and case-insensitive, -EventId, -MessageId matches
 * the message-id, internal or network id, -MessageSubject substring). Output names follow
 * Get-MessageTrackingLog (Timestamp, EventId, Source, Sender, Recipients, ...).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCsvLine } from './protocol-csv.js';
import { TRACKING_FIELDS } from './tracking.js';

export interface TrackingFilters {
  readonly sender?: string;
  readonly recipient?: string;
  readonly eventId?: string;
  readonly messageId?: string;
  readonly subject?: string;
  readonly start?: Date;
  readonly end?: Date;
  readonly resultSize?: number;
}

export interface TrackingRow {
  readonly Timestamp: string;
  readonly ClientIp: string;
  readonly ClientHostname: string;
  readonly ServerIp: string;
  readonly ServerHostname: string;
  readonly SourceContext: string;
  readonly ConnectorId: string;
  readonly Source: string;
  readonly EventId: string;
  readonly InternalMessageId: string;
  readonly MessageId: string;
  readonly NetworkMessageId: string;
  readonly Recipients: readonly string[];
  readonly RecipientStatus: readonly string[];
  readonly TotalBytes: number | null;
  readonly RecipientCount: number | null;
  readonly RelatedRecipientAddress: string;
  readonly Reference: string;
  readonly MessageSubject: string;
  readonly Sender: string;
  readonly ReturnPath: string;
}

function rowOf(fields: readonly string[]): TrackingRow {
  const v = (name: (typeof TRACKING_FIELDS)[number]) => fields[TRACKING_FIELDS.indexOf(name)] ?? '';
  const num = (s: string) => (s === '' ? null : Number(s));
  return {
    Timestamp: v('date-time'),
    ClientIp: v('client-ip'),
    ClientHostname: v('client-hostname'),
    ServerIp: v('server-ip'),
    ServerHostname: v('server-hostname'),
    SourceContext: v('source-context'),
    ConnectorId: v('connector-id'),
    Source: v('source'),
    EventId: v('event-id'),
    InternalMessageId: v('internal-message-id'),
    MessageId: v('message-id'),
    NetworkMessageId: v('network-message-id'),
    Recipients: v('recipient-address') ? v('recipient-address').split(';') : [],
    RecipientStatus: v('recipient-status') ? v('recipient-status').split(';') : [],
    TotalBytes: num(v('total-bytes')),
    RecipientCount: num(v('recipient-count')),
    RelatedRecipientAddress: v('related-recipient-address'),
    Reference: v('reference'),
    MessageSubject: v('message-subject'),
    Sender: v('sender-address'),
    ReturnPath: v('return-path'),
  };
}

/** Pure: does a row pass the filters? */
export function matchesTracking(row: TrackingRow, f: TrackingFilters): boolean {
  const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  if (f.sender !== undefined && !eq(row.Sender, f.sender)) return false;
  if (f.recipient !== undefined && !row.Recipients.some((r) => eq(r, f.recipient!))) return false;
  if (f.eventId !== undefined && !eq(row.EventId, f.eventId)) return false;
  if (f.messageId !== undefined) {
    const m = f.messageId.replace(/^<|>$/g, '').toLowerCase();
    if (![row.MessageId.replace(/^<|>$/g, ''), row.InternalMessageId, row.NetworkMessageId].some((x) => x.toLowerCase() === m)) return false;
  }
  if (f.subject !== undefined && !row.MessageSubject.toLowerCase().includes(f.subject.toLowerCase())) return false;
  const t = Date.parse(row.Timestamp);
  if (f.start && !(t >= f.start.getTime())) return false;
  if (f.end && !(t < f.end.getTime())) return false;
  return true;
}

/** Parses one file's text into rows (header lines and the BOM skipped). */
export function parseTrackingLog(text: string): TrackingRow[] {
  const rows: TrackingRow[] = [];
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    if (!raw || raw.startsWith('#')) continue;
    rows.push(rowOf(parseCsvLine(raw)));
  }
  return rows;
}

export async function searchTracking(dir: string, f: TrackingFilters): Promise<TrackingRow[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^MSGTRK\d{10}-\d+\.LOG$/.test(n));
  } catch {
    return [];
  }
  names.sort((a, b) => {
    const [ha, ia] = a.slice(6, -4).split('-');
    const [hb, ib] = b.slice(6, -4).split('-');
    return ha! === hb! ? Number(ia) - Number(ib) : ha! < hb! ? -1 : 1;
  });
  const out: TrackingRow[] = [];
  const limit = f.resultSize ?? 1000;
  for (const n of names) {
    for (const row of parseTrackingLog(await readFile(join(dir, n), 'utf8'))) {
      if (matchesTracking(row, f)) {
        out.push(row);
        if (out.length >= limit) return out;
      }
    }
  }
  return out;
}

/** A readable table for the CLI. */
export function formatTrackingRows(rows: readonly TrackingRow[]): string {
  if (!rows.length) return 'no matching tracking events\n';
  const table = [['Timestamp', 'EventId', 'Source', 'Sender', 'Recipients', 'MessageSubject'], ...rows.map((r) => [r.Timestamp, r.EventId, r.Source, r.Sender || '<>', r.Recipients.join(';'), r.MessageSubject])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
  return `${table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')}\n`;
}

/** `mailyard tracking search` end to end: options as commander gives them; returns the exit code. */
export async function trackingSearchCommand(
  config: { server: { logDir: string } },
  o: Record<string, string | boolean | undefined>,
  out: { stdout: (t: string) => void; stderr: (t: string) => void },
): Promise<number> {
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const time = (k: string): Date | undefined | 'bad' => {
    const v = str(k);
    if (v === undefined) return undefined;
    const t = Date.parse(v);
    return Number.isNaN(t) ? 'bad' : new Date(t);
  };
  const start = time('start');
  const end = time('end');
  if (start === 'bad' || end === 'bad') {
    out.stderr('mailyard tracking search: --start/--end must be ISO times, e.g. 2026-01-05T09:00:00Z');
    return 2;
  }
  const filters: TrackingFilters = {
    ...(str('sender') !== undefined ? { sender: str('sender')! } : {}),
    ...(str('recipient') !== undefined ? { recipient: str('recipient')! } : {}),
    ...(str('event') !== undefined ? { eventId: str('event')! } : {}),
    ...(str('messageId') !== undefined ? { messageId: str('messageId')! } : {}),
    ...(str('subject') !== undefined ? { subject: str('subject')! } : {}),
    ...(start ? { start } : {}),
    ...(end ? { end } : {}),
  };
  const rows = await searchTracking(join(config.server.logDir, 'MessageTracking'), filters);
  out.stdout(o.json ? `${JSON.stringify(rows, null, 2)}\n` : formatTrackingRows(rows));
  return 0;
}
