/**
 * The categorizer: gives every pending recipient of a queued message its next hop, using the same
 * resolveRecipient as `mailyard route`. Pure (config and record in, record out); the queue manager
 * persists the result. Runs at intake (before the commit, so a message is durable together with its
 * routes), at start-up for records without routes, and for Unreachable recipients after a reload.
 *
 * Unroutable recipients park on the Unreachable key, or fail at once (NDR owed: dsnPending) when the
 * decision says ndr. A message whose hop count exceeds maxHopCount fails as a loop (554 5.4.6).
 */
import type { Config } from '../config/defaults.js';
import { formatReply } from '../model/reply.js';
import type { RoutingDecision } from '../model/routing.js';
import type { MessageRecord, RecipientState } from '../queue/record.js';
import { LOOP_REPLY, TOO_LARGE_REPLY, UNROUTABLE_REPLY } from '../queue/state.js';
import { resolveRecipient, UNREACHABLE_KEY } from './resolve.js';

export interface CategorizeOptions {
  readonly localServer?: string;
  /** Re-route recipients sitting on the Unreachable key (after a config change). */
  readonly rerouteUnreachable?: boolean;
  readonly now: number;
}

export interface Categorized {
  readonly record: MessageRecord;
  /** address -> decision, for every recipient resolved in this pass (logging/tracking). */
  readonly decisions: ReadonlyMap<string, RoutingDecision>;
  readonly loop: boolean;
  readonly changed: boolean;
}

/** The hop limit the transport enforces before relaying: the largest maxHopCount of the Receive connectors (default 30). */
export function maxHopCountOf(config: Config): number {
  const values = config.receiveConnectors.map((c) => c.maxHopCount);
  return values.length ? Math.max(...values) : 30;
}

export function categorize(record: MessageRecord, config: Config, opts: CategorizeOptions): Categorized {
  const decisions = new Map<string, RoutingDecision>();
  const needs = (r: RecipientState) => r.status === 'pending' && (!r.route || (opts.rerouteUnreachable === true && r.route.deliveryType === 'Unreachable'));
  if (!record.recipients.some(needs)) return { record, decisions, loop: false, changed: false };

  if (record.hopCount > maxHopCountOf(config)) {
    const s = formatReply(LOOP_REPLY);
    const recipients = record.recipients.map((r): RecipientState =>
      r.status === 'pending' ? { ...r, status: 'failed', finalReply: s, completedAt: opts.now, lastError: `hop count ${record.hopCount} exceeds ${maxHopCountOf(config)}`, dsnPending: true } : r,
    );
    return { record: { ...record, recipients, categorized: true }, decisions, loop: true, changed: true };
  }

  const recipients = record.recipients.map((r): RecipientState => {
    if (!needs(r)) return r;
    const d = resolveRecipient(config, r.address, { size: record.size, ...(opts.localServer ? { localServer: opts.localServer } : {}) });
    decisions.set(r.address, d);
    if (d.kind === 'routed') {
      const { lastError: _l, nextAttemptAt: _n, ...rest } = r;
      return { ...rest, route: d.key };
    }
    if (d.action === 'queue') return { ...r, route: UNREACHABLE_KEY, lastError: d.reason };
    const reply = d.enhanced === '5.3.4' ? TOO_LARGE_REPLY : d.enhanced === '5.4.6' ? LOOP_REPLY : UNROUTABLE_REPLY;
    return { ...r, status: 'failed', route: UNREACHABLE_KEY, finalReply: formatReply(reply), lastError: d.reason, completedAt: opts.now, dsnPending: true };
  });
  return { record: { ...record, recipients, categorized: true }, decisions, loop: false, changed: true };
}
