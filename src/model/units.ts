/**
 * Sizes and durations as administrators write them in mailyard.yaml.
 *
 * Sizes: a number of bytes, or "35MB", "512 KB", "1.5GB", "unlimited" (binary multiples, as Exchange:
 * 1 KB = 1024 B). Durations: "30s", "5m", "4h", "2d", "500ms", combinations such as "1h30m", or
 * Exchange's time-span "[d.]hh:mm:ss". Both parsers are pure and return undefined on bad input, so
 * the caller decides how to report it.
 */

export const UNLIMITED = Number.POSITIVE_INFINITY;

const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** Parses a size; returns bytes (Infinity for "unlimited") or undefined when the text is not a size. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 && Number.isInteger(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^unlimited$/i.test(text)) return UNLIMITED;
  // Exchange prints "36 MB (37,748,736 bytes)": accept that form too, trusting the byte count.
  const exch = /^[\d.]+\s*[KMGT]?B\s*\(([\d,]+) bytes\)$/i.exec(text);
  if (exch) return Number(exch[1]!.replace(/,/g, ''));
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)?$/i.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]) * SIZE_UNITS[(m[2] ?? 'B').toUpperCase()]!;
  return Number.isFinite(n) ? Math.round(n) : undefined;
}

/** Formats bytes the way a person would write them back into the config file. */
export function formatSize(bytes: number): string {
  if (bytes === UNLIMITED) return 'unlimited';
  for (const [unit, mult] of [['TB', 1024 ** 4], ['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]] as const) {
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${unit}`;
  }
  return String(bytes);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a duration; returns milliseconds (Infinity for "unlimited") or undefined when it is not a duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined; // bare numbers are seconds
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^unlimited$/i.test(text)) return UNLIMITED;
  const span = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/.exec(text);
  if (span) {
    const [, d, h, mi, s, frac] = span;
    if (Number(mi) > 59 || Number(s) > 59) return undefined;
    const ms = frac ? Math.round(Number(`0.${frac}`) * 1000) : 0;
    return ((Number(d ?? 0) * 24 + Number(h)) * 60 + Number(mi)) * 60_000 + Number(s) * 1000 + ms;
  }
  if (!/^(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$/i.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/gi)) total += Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!;
  return Math.round(total);
}

/** Formats milliseconds compactly: 90000 -> "1m30s", 172800000 -> "2d". */
export function formatDuration(ms: number): string {
  if (ms === UNLIMITED) return 'unlimited';
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, mult] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    if (rest >= mult) {
      const n = Math.floor(rest / mult);
      out += `${n}${unit}`;
      rest -= n * mult;
    }
  }
  return out;
}
