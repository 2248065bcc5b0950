/**
 * The DNS seam the rest of Mailyard is written against: a small `Resolver` interface (MX, A, AAAA)
 * whose answers are values, never exceptions, and one implementation over node:dns.
 *
 * Promises:
 * - `dns.servers` entries are used as given, with ports ("127.0.0.1:5353", "[::1]:5353"), so tests
 *   and operators can point Mailyard at any resolver; without them the system resolvers are used;
 * - `dns.timeout` bounds every query (one try per server);
 * - NXDOMAIN and NODATA are told apart from SERVFAIL, REFUSED and timeouts: the first two are
 *   answers about the name ("permanent"), the others say nothing about it ("temporary").
 */
import { promises as dnsPromises } from 'node:dns';
import type { Config } from '../config/defaults.js';

export interface MxRecord {
  readonly exchange: string; // "" or "." for a null MX (RFC 7505)
  readonly preference: number;
}

export type DnsFailureKind = 'nxdomain' | 'nodata' | 'temporary';

export type DnsResult<T> =
  | { readonly ok: true; readonly records: readonly T[] }
  | { readonly ok: false; readonly kind: DnsFailureKind; readonly code: string; readonly detail: string };

export interface Resolver {
  mx(domain: string): Promise<DnsResult<MxRecord>>;
  a(host: string): Promise<DnsResult<string>>;
  aaaa(host: string): Promise<DnsResult<string>>;
}

/** node:dns error codes → what they tell about the name. Unknown codes are temporary. */
const PERMANENT: Record<string, DnsFailureKind> = {
  ENOTFOUND: 'nxdomain', // NXDOMAIN
  ENODATA: 'nodata', // name exists, no record of that type
};

export function dnsFailureKind(code: string | undefined): DnsFailureKind {
  return (code && PERMANENT[code]) || 'temporary';
}

export interface NodeResolverOptions {
  /** "IP" or "IP:port" / "[IPv6]:port"; empty or undefined = the system resolvers. */
  readonly servers?: readonly string[];
  /** Milliseconds per query. */
  readonly timeoutMs?: number;
}

/** node:dns setServers takes "1.2.3.4", "1.2.3.4:5353", "::1" and "[::1]:5353" as they are. */
export function normalizeServer(entry: string): string {
  return entry.trim();
}

class NodeResolver implements Resolver {
  private readonly resolver: dnsPromises.Resolver;

  constructor(opts: NodeResolverOptions) {
    const timeout = opts.timeoutMs !== undefined && Number.isFinite(opts.timeoutMs) ? Math.max(1, Math.round(opts.timeoutMs)) : 5000;
    this.resolver = new dnsPromises.Resolver({ timeout, tries: 1 });
    if (opts.servers && opts.servers.length > 0) this.resolver.setServers(opts.servers.map(normalizeServer));
  }

  private async run<T>(what: string, name: string, fn: () => Promise<T[]>): Promise<DnsResult<T>> {
    try {
      const records = await fn();
      if (records.length === 0) return { ok: false, kind: 'nodata', code: 'ENODATA', detail: `${what} ${name}: no records` };
      return { ok: true, records };
    } catch (err) {
      const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'EUNKNOWN';
      return { ok: false, kind: dnsFailureKind(code), code, detail: `${what} ${name}: ${code}` };
    }
  }

  mx(domain: string): Promise<DnsResult<MxRecord>> {
    return this.run('MX', domain, async () => (await this.resolver.resolveMx(domain)).map((r) => ({ exchange: r.exchange, preference: r.priority })));
  }

  a(host: string): Promise<DnsResult<string>> {
    return this.run('A', host, () => this.resolver.resolve4(host));
  }

  aaaa(host: string): Promise<DnsResult<string>> {
    return this.run('AAAA', host, () => this.resolver.resolve6(host));
  }
}

export function createNodeResolver(opts: NodeResolverOptions = {}): Resolver {
  return new NodeResolver(opts);
}

/** The resolver configured by the `dns` section of mailyard.yaml. */
export function createResolverFromConfig(config: Pick<Config, 'dns'>): Resolver {
  return createNodeResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeout });
}
