/**
 * From a recipient domain and its MX answer to the ordered list of hosts to try (RFC 5321 5.1,
 * RFC 7505). Pure: the DNS answer and the random source are parameters.
 *
 * Promises:
 * - hosts come in ascending preference; hosts of equal preference are shuffled with the injected
 *   random (so load spreads, and tests can fix the order);
 * - no MX records (NODATA) → the domain itself is the only host ("implicit MX");
 * - a null MX ("." with preference 0 as the only record) → permanent failure 5.1.10 at once;
 * - NXDOMAIN → permanent failure 5.1.2; SERVFAIL, timeouts and other resolver trouble → deferral;
 * - address literals (user@[192.0.2.1], user@[IPv6:2001:db8::1]) skip DNS entirely.
 */
import { parseIp } from '../../model/ip-range.js';
import type { DnsResult, MxRecord } from '../../platform/dns.js';
import type { DeliveryFailure } from '../classify.js';

export interface MxHost {
  /** Host name (lower case, no trailing dot) or an IP address for literals. */
  readonly name: string;
  readonly preference: number;
}

export type MxPlan =
  | { readonly kind: 'hosts'; readonly hosts: readonly MxHost[]; readonly implicit: boolean }
  | { readonly kind: 'literal'; readonly ip: string }
  | { readonly kind: 'error'; readonly failure: Extract<DeliveryFailure, { kind: 'dns' }> };

/** Random source in [0, 1); Math.random in production, a fixed sequence in tests. */
export type RandomSource = () => number;

function cleanName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

/** "[192.0.2.1]", "192.0.2.1", "[IPv6:2001:db8::1]" → the IP; anything else → undefined. */
export function addressLiteral(domain: string): string | undefined {
  const inner = domain.trim().replace(/^\[|\]$/g, '').replace(/^ipv6:/i, '');
  return parseIp(inner)?.text;
}

/** Shuffles in place (Fisher–Yates) with the given random source. */
function shuffle<T>(items: T[], random: RandomSource): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

/** Orders MX hosts: by preference, random among equals, duplicates removed (first kept). */
export function orderMxHosts(records: readonly MxRecord[], random: RandomSource): MxHost[] {
  const byPref = new Map<number, string[]>();
  for (const r of records) {
    const name = cleanName(r.exchange);
    if (!name) continue;
    const list = byPref.get(r.preference) ?? [];
    list.push(name);
    byPref.set(r.preference, list);
  }
  const out: MxHost[] = [];
  const seen = new Set<string>();
  for (const pref of [...byPref.keys()].sort((a, b) => a - b)) {
    for (const name of shuffle([...byPref.get(pref)!], random)) {
      if (seen.has(name)) continue;
      seen.add(name);
      out.push({ name, preference: pref });
    }
  }
  return out;
}

/** True when the answer is a null MX: every record's exchange is the root (RFC 7505 3). */
export function isNullMx(records: readonly MxRecord[]): boolean {
  return records.length > 0 && records.every((r) => cleanName(r.exchange) === '');
}

/** Plans the hosts for a domain from its MX answer. `mx` is not consulted for address literals. */
export function planMx(domain: string, mx: DnsResult<MxRecord> | undefined, random: RandomSource): MxPlan {
  // "[192.0.2.1]" as routing keeps it, or the bare IP (a domain name is never all-numeric).
  const literal = addressLiteral(domain);
  if (literal) return { kind: 'literal', ip: literal };
  const name = cleanName(domain);
  if (!mx) return { kind: 'error', failure: { kind: 'dns', result: 'temporary', name, detail: 'no MX answer' } };
  if (!mx.ok) {
    if (mx.kind === 'nodata') return { kind: 'hosts', hosts: [{ name, preference: 0 }], implicit: true };
    if (mx.kind === 'nxdomain') return { kind: 'error', failure: { kind: 'dns', result: 'nxdomain', name, detail: mx.code } };
    return { kind: 'error', failure: { kind: 'dns', result: 'temporary', name, detail: mx.code } };
  }
  if (isNullMx(mx.records)) return { kind: 'error', failure: { kind: 'dns', result: 'nullmx', name } };
  const hosts = orderMxHosts(mx.records, random);
  if (hosts.length === 0) return { kind: 'hosts', hosts: [{ name, preference: 0 }], implicit: true };
  return { kind: 'hosts', hosts, implicit: false };
}

/**
 * Orders the addresses of one host: IPv4 first, then IPv6, each in the order DNS gave them.
 * Every address of a host is tried before the next host.
 */
export function orderAddresses(a: readonly string[], aaaa: readonly string[]): string[] {
  return [...new Set([...a, ...aaaa])];
}
