/**
 * Back pressure (Exchange's name for it): when the server runs short of a resource it stops taking
 * new mail before anything breaks, and goes on delivering what it already holds. Pure: readings in,
 * levels out; the sampling lives in queue/resource-monitor.ts.
 *
 * Resources and their levels (each with hysteresis, so a value hovering at a threshold does not
 * flip the level at every check):
 *  - DiskSpace, free space on the spool's file system: Medium below 2 x minimumFreeDiskSpace,
 *    High below minimumFreeDiskSpace. High is left above 1.25 x, Medium above 2.5 x.
 *  - QueueLength, messages in the queue: Medium from 75% of maxQueuedMessages, High from 100%.
 *    High is left below 90%, Medium below 60%.
 * The server's level is the worst of the resources. What the levels do (receive/connector.ts):
 * Normal takes all mail; Medium refuses new mail from anonymous sessions (the Internet) and keeps
 * taking it from authenticated users, organization servers and partners; High refuses all new
 * mail. Refusals are `452 4.3.1 Insufficient system resources` at MAIL FROM, so senders retry.
 */

import type { PrincipalKind } from './permissions.js';

export type PressureLevel = 'Normal' | 'Medium' | 'High';
export type PressureResource = 'DiskSpace' | 'QueueLength';

export interface BackPressureSettings {
  readonly enabled: boolean;
  /** Bytes; free space below this on the spool's file system is High. */
  readonly minimumFreeDiskSpace: number;
  /** Messages in the queue at which the level is High. */
  readonly maxQueuedMessages: number;
}

export interface ResourceReading {
  /** Free bytes on the spool's file system (undefined: could not be read). */
  readonly freeDiskBytes: number | undefined;
  readonly queuedMessages: number;
}

export interface ResourceState {
  readonly resource: PressureResource;
  readonly level: PressureLevel;
  /** What was measured, for logs and the admin API ("812 MB free, Medium below 1000 MB"). */
  readonly detail: string;
}

export interface PressureState {
  readonly level: PressureLevel;
  readonly resources: readonly ResourceState[];
}

export const NORMAL: PressureState = { level: 'Normal', resources: [] };

/** A level as a number (0 Normal, 1 Medium, 2 High): for comparisons and the metric. */
export const PRESSURE_RANK: Readonly<Record<PressureLevel, number>> = { Normal: 0, Medium: 1, High: 2 };

/** The worse of two levels. */
export function worse(a: PressureLevel, b: PressureLevel): PressureLevel {
  return PRESSURE_RANK[a] >= PRESSURE_RANK[b] ? a : b;
}

/**
 * Level of a value that grows with pressure. `medium`/`high` are where a level starts;
 * `mediumClear`/`highClear` (lower) are where a level reached earlier is left again.
 */
export function band(value: number, t: { medium: number; high: number; mediumClear: number; highClear: number }, previous: PressureLevel): PressureLevel {
  if (value >= t.high || (previous === 'High' && value >= t.highClear)) return 'High';
  if (value >= t.medium || (previous !== 'Normal' && value >= t.mediumClear)) return 'Medium';
  return 'Normal';
}

const MB = 1024 * 1024;
const mb = (n: number) => `${Math.round(n / MB)} MB`;
/** Free space is rounded down, so a reading below a threshold never prints as the threshold itself. */
const mbFree = (n: number) => `${Math.floor(n / MB)} MB`;

/** The levels for one reading, given the levels of the previous check. */
export function evaluatePressure(reading: ResourceReading, settings: BackPressureSettings, previous: PressureState = NORMAL): PressureState {
  if (!settings.enabled) return NORMAL;
  const before = (r: PressureResource): PressureLevel => previous.resources.find((s) => s.resource === r)?.level ?? 'Normal';
  const resources: ResourceState[] = [];

  const min = settings.minimumFreeDiskSpace;
  // 0 (or "unlimited", which no disk could satisfy) turns the disk check off.
  const diskChecked = min > 0 && Number.isFinite(min);
  if (reading.freeDiskBytes !== undefined && diskChecked) {
    // Free space shrinks as pressure grows: compare its negation.
    const level = band(-reading.freeDiskBytes, { high: -min, medium: -2 * min, highClear: -1.25 * min, mediumClear: -2.5 * min }, before('DiskSpace'));
    resources.push({
      resource: 'DiskSpace',
      level,
      detail: `${mbFree(reading.freeDiskBytes)} free on the spool's file system (Medium below ${mb(2 * min)}, High below ${mb(min)})`,
    });
  } else if (reading.freeDiskBytes === undefined && diskChecked) {
    // Unreadable this time: keep what the last reading said rather than guess.
    const last = previous.resources.find((s) => s.resource === 'DiskSpace');
    if (last) resources.push(last);
  }

  const max = settings.maxQueuedMessages;
  if (Number.isFinite(max) && max > 0) {
    const level = band(reading.queuedMessages, { high: max, medium: 0.75 * max, highClear: 0.9 * max, mediumClear: 0.6 * max }, before('QueueLength'));
    resources.push({
      resource: 'QueueLength',
      level,
      detail: `${reading.queuedMessages} messages queued (Medium from ${Math.ceil(0.75 * max)}, High from ${max})`,
    });
  }

  let level: PressureLevel = 'Normal';
  for (const r of resources) level = worse(level, r.level);
  return { level, resources };
}

/**
 * Whether a session may start a new transaction at this level: High refuses everyone, Medium
 * refuses anonymous sessions only.
 */
export function admitsSender(level: PressureLevel, principal: PrincipalKind): boolean {
  if (level === 'High') return false;
  if (level === 'Medium') return principal !== 'anonymous';
  return true;
}

/** A one-line summary for logs: "High (DiskSpace: 80 MB free ...)". */
export function describePressure(state: PressureState): string {
  const hot = state.resources.filter((r) => r.level !== 'Normal');
  return hot.length ? `${state.level} (${hot.map((r) => `${r.resource} ${r.level}: ${r.detail}`).join('; ')})` : state.level;
}
