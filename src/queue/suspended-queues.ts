/**
 * Which queues an administrator has suspended (Suspend-Queue), kept in the spool as
 * `queue/v1/suspended-queues.json` so that a suspension survives a restart.
 *
 * Promises:
 * - `parseSuspendedQueues` / `serializeSuspendedQueues` are pure; parsing never throws (a damaged
 *   file is reported as an error and reads as "nothing suspended").
 * - `SuspendedQueueStore.save` resolves only when the new file has replaced the old one atomically
 *   (temp file + fsync + rename + directory fsync); concurrent saves are applied in call order, so
 *   the file always ends up holding the last state handed in.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeliveryType, NextHopKey } from '../model/routing.js';
import { fsyncDir, writeFileAtomic } from '../platform/fs-atomic.js';

export const SUSPENDED_QUEUES_FILE = 'suspended-queues.json';

export interface SuspendedQueues {
  /** Categorization is stopped: new messages are stored but not routed. */
  readonly submission: boolean;
  /** Automatic resubmission of the Unreachable queue (on config reload) is stopped. */
  readonly unreachable: boolean;
  /** Delivery queues, by their next-hop key. */
  readonly queues: readonly NextHopKey[];
}

export const NOTHING_SUSPENDED: SuspendedQueues = { submission: false, unreachable: false, queues: [] };

const DELIVERY_TYPES: readonly DeliveryType[] = ['DnsConnectorDelivery', 'SmartHostConnectorDelivery', 'SmtpDeliveryToMailbox', 'NonSmtpGatewayDelivery', 'DeliveryAgent'];

export function serializeSuspendedQueues(s: SuspendedQueues): string {
  const queues = s.queues.map((k) => ({ deliveryType: k.deliveryType, nextHopDomain: k.nextHopDomain, connector: k.connector }));
  return `${JSON.stringify({ v: 1, submission: s.submission, unreachable: s.unreachable, queues }, null, 2)}\n`;
}

export function parseSuspendedQueues(text: string): { state: SuspendedQueues; error?: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { state: NOTHING_SUSPENDED, error: 'not valid JSON' };
  }
  if (typeof raw !== 'object' || raw === null || (raw as { v?: unknown }).v !== 1) return { state: NOTHING_SUSPENDED, error: 'not a v1 suspended-queues file' };
  const o = raw as { submission?: unknown; unreachable?: unknown; queues?: unknown };
  const queues: NextHopKey[] = [];
  const bad: string[] = [];
  for (const q of Array.isArray(o.queues) ? o.queues : []) {
    const k = q as { deliveryType?: unknown; nextHopDomain?: unknown; connector?: unknown } | null;
    if (
      k &&
      typeof k === 'object' &&
      DELIVERY_TYPES.includes(k.deliveryType as DeliveryType) &&
      typeof k.nextHopDomain === 'string' &&
      k.nextHopDomain !== '' &&
      (k.connector === null || typeof k.connector === 'string')
    ) {
      queues.push({ deliveryType: k.deliveryType as DeliveryType, nextHopDomain: k.nextHopDomain, connector: k.connector });
    } else bad.push(JSON.stringify(q));
  }
  const state: SuspendedQueues = { submission: o.submission === true, unreachable: o.unreachable === true, queues };
  return bad.length ? { state, error: `ignored invalid queue entries: ${bad.join(', ')}` } : { state };
}

export class SuspendedQueueStore {
  readonly path: string;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly dir: string, private readonly fsync: boolean) {
    this.path = join(dir, SUSPENDED_QUEUES_FILE);
  }

  /** The saved state; a missing file is "nothing suspended". */
  async load(): Promise<{ state: SuspendedQueues; error?: string }> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: NOTHING_SUSPENDED };
      throw err;
    }
    return parseSuspendedQueues(text);
  }

  save(state: SuspendedQueues): Promise<void> {
    const data = serializeSuspendedQueues(state);
    const run = async () => {
      await writeFileAtomic(this.path, data, { fsync: this.fsync });
      if (this.fsync) await fsyncDir(this.dir);
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }
}
