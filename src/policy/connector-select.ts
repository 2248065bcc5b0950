/**
 * Which Receive connector serves a connection (reference 2.7), with the reasoning written out for
 * `mailyard connector match` and the logs:
 *   1. enabled connectors whose bindings contain the local endpoint (0.0.0.0 / [::] match every
 *      address of their family; IPv4-mapped IPv6 counts as IPv4);
 *   2. of those, the ones whose remoteIPRanges contain the client;
 *   3. the one whose matching range has the fewest addresses;
 *   4. on a tie, a connector bound to the specific local address beats one bound to a wildcard;
 *   5. still tied (a configuration error Exchange forbids): the first in the file.
 * Pure: no sockets, no clock.
 */
import { isIpRange, parseIp, parseIpRange, rangeContains, rangeSize, type Binding, type IpRange } from '../model/ip-range.js';
import { bindingMatches, parseListenBinding } from './bindings.js';

export interface SelectableConnector {
  readonly name: string;
  readonly enabled: boolean;
  readonly bindings: readonly string[];
  readonly remoteIPRanges: readonly string[];
}

export type ConnectorSelection<C extends SelectableConnector> =
  | { readonly kind: 'selected'; readonly connector: C; readonly range: string; readonly steps: readonly string[] }
  | { readonly kind: 'refused'; readonly reason: string; readonly steps: readonly string[] };

interface Candidate<C> {
  readonly connector: C;
  readonly binding: Binding;
  readonly range?: IpRange;
  readonly size?: bigint;
}

export function selectConnector<C extends SelectableConnector>(
  connectors: readonly C[],
  local: { readonly address: string; readonly port: number },
  remote: string,
): ConnectorSelection<C> {
  const steps: string[] = [];
  const localIp = parseIp(local.address);
  const remoteIp = parseIp(remote);
  const localText = localIp ? (localIp.family === 6 ? `[${localIp.text}]:${local.port}` : `${localIp.text}:${local.port}`) : `${local.address}:${local.port}`;
  if (!localIp) return { kind: 'refused', reason: `"${local.address}" is not an IP address`, steps };
  if (!remoteIp) return { kind: 'refused', reason: `"${remote}" is not an IP address`, steps };

  // 1. bindings
  const bound: Candidate<C>[] = [];
  for (const c of connectors) {
    if (!c.enabled) {
      steps.push(`skip "${c.name}": disabled`);
      continue;
    }
    let match: Binding | undefined;
    for (const text of c.bindings) {
      const b = parseListenBinding(text);
      if ('error' in b) continue;
      if (bindingMatches(b, { address: localIp.text, port: local.port })) {
        // prefer a specific binding over a wildcard if the connector has both
        if (!match || (match.wildcard && !b.wildcard)) match = b;
      }
    }
    if (!match) {
      steps.push(`skip "${c.name}": no binding contains ${localText} (bindings ${c.bindings.join(', ')})`);
      continue;
    }
    bound.push({ connector: c, binding: match });
    steps.push(`candidate "${c.name}": binding ${match.text} contains ${localText}`);
  }
  if (bound.length === 0) {
    return { kind: 'refused', reason: `no enabled Receive connector is bound to ${localText}`, steps };
  }

  // 2. remote ranges
  const inRange: Candidate<C>[] = [];
  for (const cand of bound) {
    let best: IpRange | undefined;
    for (const text of cand.connector.remoteIPRanges) {
      const r = parseIpRange(text);
      if (!isIpRange(r) || !rangeContains(r, remoteIp)) continue;
      if (!best || rangeSize(r) < rangeSize(best)) best = r;
    }
    if (!best) {
      steps.push(`drop "${cand.connector.name}": no remote IP range contains ${remoteIp.text}`);
      continue;
    }
    const size = rangeSize(best);
    inRange.push({ ...cand, range: best, size });
    steps.push(`keep "${cand.connector.name}": remote range ${best.text} contains ${remoteIp.text} (${size} address${size === 1n ? '' : 'es'})`);
  }
  if (inRange.length === 0) {
    return { kind: 'refused', reason: `no Receive connector bound to ${localText} accepts clients from ${remoteIp.text}`, steps };
  }

  // 3. fewest addresses
  const smallest = inRange.reduce((m, c) => (c.size! < m ? c.size! : m), inRange[0]!.size!);
  let finalists = inRange.filter((c) => c.size === smallest);
  if (inRange.length > 1) {
    steps.push(`most specific remote range: ${smallest} address${smallest === 1n ? '' : 'es'} (${finalists.map((c) => `"${c.connector.name}"`).join(', ')})`);
  }

  // 4. specific local address beats wildcard
  if (finalists.length > 1) {
    const specific = finalists.filter((c) => !c.binding.wildcard);
    if (specific.length > 0 && specific.length < finalists.length) {
      steps.push(`tie broken: a binding to the specific address ${localText} beats a wildcard binding`);
      finalists = specific;
    }
  }
  // 5. configuration error; first in file order
  if (finalists.length > 1) {
    steps.push(
      `ambiguous: ${finalists.map((c) => `"${c.connector.name}"`).join(', ')} tie (Exchange forbids identical binding and range); using the first in the file`,
    );
  }
  const chosen = finalists[0]!;
  steps.push(`selected "${chosen.connector.name}"`);
  return { kind: 'selected', connector: chosen.connector, range: chosen.range!.text, steps };
}
