/**
 * Exchange's protocol log format (reference 5.2), pure: the five header lines, CSV quoting and one
 * line per event, and the hourly file names RECVyyyymmddhh-n.LOG / SENDyyyymmddhh-n.LOG (UTC).
 * A multi-line SMTP reply arrives here already joined into one line; line breaks that slip
 * through are replaced by spaces so that one event is always one line.
 */
import type { ProtocolEvent } from '../model/protocol.js';

export type ProtocolLogType = 'SMTP Receive Protocol Log' | 'SMTP Send Protocol Log';

export const PROTOCOL_LOG_FIELDS = 'date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context';
export const PROTOCOL_LOG_VERSION = '15.0.0.0';

export function protocolLogHeader(logType: ProtocolLogType, created: Date): string {
  return [
    '#Software: Mailyard',
    `#Version: ${PROTOCOL_LOG_VERSION}`,
    `#Log-type: ${logType}`,
    `#Date: ${created.toISOString()}`,
    `#Fields: ${PROTOCOL_LOG_FIELDS}`,
    '',
  ].join('\r\n');
}

/** One CSV field: quoted when it holds a comma, a quote or leading/trailing spaces; inner quotes doubled. */
export function csvField(value: string | number | undefined): string {
  if (value === undefined) return '';
  const raw = typeof value === 'string' ? value : String(value);
  // Most values (addresses, ids, IPs) need nothing: one test instead of a replace and a test.
  if (!/[",\r\n]|^\s|\s$/.test(raw)) return raw;
  const s = raw.replace(/\r\n|\r|\n/g, ' ');
  return /[",]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatProtocolEvent(e: ProtocolEvent): string {
  return (
    [
      e.timestamp.toISOString(),
      csvField(e.connectorId),
      csvField(e.sessionId),
      String(e.sequence),
      csvField(e.localEndpoint),
      csvField(e.remoteEndpoint),
      e.event,
      csvField(e.data),
      csvField(e.context),
    ].join(',') + '\r\n'
  );
}

/** "RECV2024030509-1.LOG": prefix, UTC date and hour, instance number. */
export function protocolLogFileName(prefix: 'RECV' | 'SEND', at: Date, instance: number): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${prefix}${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}${p(at.getUTCHours())}-${instance}.LOG`;
}

/** Parses a protocol log file name back into its hour key ("yyyymmddhh") and instance; undefined for other files. */
export function parseProtocolLogFileName(name: string): { prefix: 'RECV' | 'SEND'; hour: string; instance: number } | undefined {
  const m = /^(RECV|SEND)(\d{10})-(\d+)\.LOG$/.exec(name);
  return m ? { prefix: m[1] as 'RECV' | 'SEND', hour: m[2]!, instance: Number(m[3]) } : undefined;
}

/** Splits a CSV line of a protocol log back into fields (for tests and log readers). */
export function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  const s = line.replace(/\r?\n$/, '');
  while (i <= s.length) {
    if (s[i] === '"') {
      let v = '';
      i++;
      while (i < s.length) {
        if (s[i] === '"' && s[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (s[i] === '"') {
          i++;
          break;
        } else v += s[i++];
      }
      out.push(v);
      i++; // comma
    } else {
      const j = s.indexOf(',', i);
      if (j < 0) {
        out.push(s.slice(i));
        break;
      }
      out.push(s.slice(i, j));
      i = j + 1;
      if (i === s.length) out.push('');
    }
  }
  return out;
}
