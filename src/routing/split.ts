/**
 * Bifurcation: groups a message's recipients by next hop so that each delivery queue gets one
 * entry per message carrying only its own recipients. Pure; order of first appearance is kept.
 */
import { nextHopKeyString, type NextHopKey, type RoutingDecision } from '../model/routing.js';

export interface NextHopGroup<R> {
  readonly key: NextHopKey;
  readonly recipients: readonly R[];
}

export interface SplitResult<R> {
  readonly groups: readonly NextHopGroup<R>[];
  /** Recipients whose decision is unroutable, with that decision. */
  readonly unroutable: readonly { readonly recipient: R; readonly decision: Extract<RoutingDecision, { kind: 'unroutable' }> }[];
}

/** recipients[i] is routed by decisions[i]. */
export function splitByNextHop<R>(recipients: readonly R[], decisions: readonly RoutingDecision[]): SplitResult<R> {
  const groups = new Map<string, { key: NextHopKey; recipients: R[] }>();
  const unroutable: { recipient: R; decision: Extract<RoutingDecision, { kind: 'unroutable' }> }[] = [];
  recipients.forEach((r, i) => {
    const d = decisions[i];
    if (!d) throw new Error(`splitByNextHop: no decision for recipient #${i}`);
    if (d.kind === 'unroutable') {
      unroutable.push({ recipient: r, decision: d });
      return;
    }
    const k = nextHopKeyString(d.key);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { key: d.key, recipients: [] }));
    g.recipients.push(r);
  });
  return { groups: [...groups.values()], unroutable };
}
