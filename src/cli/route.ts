/**
 * `mailyard route ADDRESS... [--size BYTES] [--json]`: routing resolution without sending. Calls the
 * same pure resolveRecipient the categorizer uses and prints the candidates, the reason each was
 * kept or dropped, and the choice. Returns the text; the caller prints it.
 */
import type { Config } from '../config/defaults.js';
import { resolveRecipient } from '../routing/resolve.js';
import type { RoutingDecision } from '../model/routing.js';

export interface RouteJson {
  readonly recipient: string;
  readonly connector: string | null;
  readonly connectorType: string | null;
  readonly addressSpace: string | null;
  readonly cost: number | null;
  readonly nextHop: string | null;
  readonly deliveryType: string;
  readonly unroutable?: { readonly action: 'queue' | 'ndr'; readonly enhanced: string; readonly reason: string };
  readonly candidates: readonly { connector: string; connectorType: string; addressSpace: string; cost: number; kept: boolean; reason: string }[];
}

export function routeJson(recipient: string, d: RoutingDecision): RouteJson {
  const candidates = d.candidates.map((c) => ({ connector: c.connector, connectorType: c.connectorType, addressSpace: c.addressSpace, cost: c.cost, kept: c.kept, reason: c.reason }));
  if (d.kind === 'routed') {
    return {
      recipient,
      connector: d.key.connector ?? (d.connectorType === 'mailbox' ? 'mailbox' : null),
      connectorType: d.connectorType,
      addressSpace: d.addressSpace,
      cost: d.cost,
      nextHop: d.key.nextHopDomain,
      deliveryType: d.key.deliveryType,
      candidates,
    };
  }
  return {
    recipient,
    connector: null,
    connectorType: null,
    addressSpace: null,
    cost: null,
    nextHop: null,
    deliveryType: 'Unreachable',
    unroutable: { action: d.action, enhanced: d.enhanced, reason: d.reason },
    candidates,
  };
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function routeCommand(config: Config, addresses: readonly string[], opts: { size?: number; json?: boolean; localServer?: string }): string {
  const size = opts.size ?? 0;
  const results = addresses.map((a) => routeJson(a, resolveRecipient(config, a, { size, ...(opts.localServer ? { localServer: opts.localServer } : {}) })));
  if (opts.json) return `${JSON.stringify(results, null, 2)}\n`;
  const out: string[] = [];
  for (const r of results) {
    out.push(`${r.recipient} (size ${size} bytes)`);
    if (r.connector !== null) {
      out.push(`  route:  ${r.connector} [${r.connectorType}] via ${r.addressSpace}, cost ${r.cost}`);
      out.push(`  next hop: ${r.deliveryType} ${r.nextHop}`);
    } else {
      const u = r.unroutable!;
      out.push(`  unroutable: ${u.enhanced} ${u.reason}`);
      out.push(`  action: ${u.action === 'queue' ? 'waits in the Unreachable queue until a config change or expiry' : 'bounced at once (NDR)'}`);
    }
    if (r.candidates.length) {
      out.push('  candidates:');
      const rows = [['', 'connector', 'type', 'address space', 'cost', 'reason'], ...r.candidates.map((c) => [c.kept ? '*' : '-', c.connector, c.connectorType, c.addressSpace, String(c.cost), c.reason])];
      out.push(table(rows).split('\n').map((l) => `    ${l}`).join('\n'));
    } else {
      out.push('  candidates: none (no connector has a matching address space)');
    }
    out.push('');
  }
  return out.join('\n');
}
