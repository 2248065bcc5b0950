/**
 * Routing resolution: which next hop a recipient goes to, and why. Pure: it reads only the frozen
 * Config it is given, so the daemon's categorizer and `mailyard route` give the same answer.
 *
 * Order (reference 3.2):
 *  1. Accepted domains: Authoritative -> mailbox delivery; InternalRelay/ExternalRelay -> go on.
 *  2. Send, Foreign and Delivery Agent connectors whose address space matches the recipient
 *     (SMTP: exact domain > longest "*.suffix" (also the domain itself) > "*"; a non-SMTP
 *     address type only to connectors that carry it: Foreign, Delivery Agent, smart-host Send).
 *  3. Dropped, each with a reason: disabled, scoped to another site, too small for the message,
 *     smart host pointing back at this server (loop).
 *  4. The most specific match, then the lowest aggregate cost (address-space cost + site-link cost
 *     from the local site), then the nearest source server (local, same site, other site), then name.
 * Every connector whose address space matched is listed in `candidates` with kept + reason.
 * No match: unroutable 5.4.4 (queue, or ndr for non-SMTP addresses / unreachableAction ndr);
 * too large for every matching connector: unroutable ndr 5.3.4.
 */
import { parseAddress } from '../model/address.js';
import { smtpMatchSpecificity, type AddressSpace } from '../model/address-space.js';
import type { Candidate, ConnectorKind, DeliveryType, NextHopKey, RoutingDecision } from '../model/routing.js';
import type { Config } from '../config/defaults.js';
import { parseIp } from '../model/ip-range.js';
import { configuredEndpoints, isSelfHost, selfIdentity, type SelfIdentity } from '../policy/self-loop.js';

export interface ResolveOptions {
  /** Message size in bytes (the spooled size). */
  readonly size: number;
  /** The server doing the routing; default config.server.name. */
  readonly localServer?: string;
}

export const MAILBOX_KEY: NextHopKey = { deliveryType: 'SmtpDeliveryToMailbox', nextHopDomain: 'mailbox', connector: null };
export const UNREACHABLE_KEY: NextHopKey = { deliveryType: 'Unreachable', nextHopDomain: 'Unreachable Domain', connector: null };

/** A recipient as routing sees it: an SMTP domain, or a non-SMTP type ("FAX:+15551234"). */
export type RoutingAddress = { readonly type: 'SMTP'; readonly domain: string } | { readonly type: string; readonly address: string };

/** "user@domain" is SMTP; "TYPE:address" without "@" (or any non-SMTP prefix) is a non-SMTP address. */
export function routingAddressOf(recipient: string): RoutingAddress | undefined {
  const m = /^([A-Za-z][A-Za-z0-9-]*):(.+)$/.exec(recipient.trim());
  if (m && m[1]!.toUpperCase() !== 'SMTP' && !recipient.includes('@')) return { type: m[1]!.toUpperCase(), address: m[2]! };
  const rest = m && m[1]!.toUpperCase() === 'SMTP' ? m[2]! : recipient;
  const a = parseAddress(rest.trim());
  return a ? { type: 'SMTP', domain: a.domain } : undefined;
}

/** Non-SMTP spaces: "*" matches all; a trailing "*" is a prefix match; otherwise case-insensitive equality. */
function nonSmtpSpecificity(space: AddressSpace, type: string, address: string): number {
  if (space.type !== type) return -1;
  const s = space.address.toLowerCase();
  const a = address.toLowerCase();
  if (s === '*') return 0;
  if (s.endsWith('*')) return a.startsWith(s.slice(0, -1)) ? 1 + s.length : -1;
  return s === a ? 1_000 : -1;
}

function specificityOf(space: AddressSpace, addr: RoutingAddress): number {
  if (addr.type === 'SMTP') return smtpMatchSpecificity(space, (addr as { domain: string }).domain);
  return nonSmtpSpecificity(space, addr.type, (addr as { address: string }).address);
}

/** The accepted domain that covers `domain`: exact beats the longest "*.suffix". */
export function matchAcceptedDomain(config: Config, domain: string): Config['acceptedDomains'][number] | undefined {
  let best: Config['acceptedDomains'][number] | undefined;
  let bestScore = -1;
  const d = domain.toLowerCase();
  for (const ad of config.acceptedDomains) {
    const name = ad.domainName.toLowerCase().replace(/\.$/, '');
    let score = -1;
    if (name.startsWith('*.')) {
      const suffix = name.slice(2);
      if (d === suffix || d.endsWith(`.${suffix}`)) score = suffix.length;
    } else if (name === d) score = 10_000;
    if (score > bestScore) {
      best = ad;
      bestScore = score;
    }
  }
  return best;
}

interface Option {
  readonly name: string;
  readonly kind: ConnectorKind;
  readonly space: AddressSpace;
  readonly specificity: number;
  readonly aggregateCost: number;
  readonly hopRank: number;
  readonly key: NextHopKey;
  dropped?: string;
}

/** Site of a server: organization.servers, else server.site for the local server. */
function siteOf(config: Config, server: string, localServer: string): string | undefined {
  const entry = config.organization.servers.find((s) => s.name.toLowerCase() === server.toLowerCase());
  if (entry) return entry.site;
  return server.toLowerCase() === localServer.toLowerCase() ? config.server.site : undefined;
}

function siteLinkCost(config: Config, from: string, to: string | undefined): number {
  if (to === undefined) return 0;
  if (from.toLowerCase() === to.toLowerCase()) return 0;
  // Cheapest path over site links (Dijkstra on a tiny graph).
  const dist = new Map<string, number>([[from.toLowerCase(), 0]]);
  const done = new Set<string>();
  for (let guard = 0; guard < 1000; guard++) {
    let cur: string | undefined;
    let curD = Infinity;
    for (const [s, d] of dist) if (!done.has(s) && d < curD) { cur = s; curD = d; }
    if (cur === undefined) break;
    if (cur === to.toLowerCase()) return curD;
    done.add(cur);
    for (const link of config.organization.siteLinks) {
      const [a, b] = link.sites.map((s) => s.toLowerCase());
      const other = a === cur ? b : b === cur ? a : undefined;
      if (other === undefined) continue;
      const nd = curD + link.cost;
      if (nd < (dist.get(other) ?? Infinity)) dist.set(other, nd);
    }
  }
  return 0; // unconnected sites: no extra cost known
}

function formatSmartHosts(hosts: readonly string[]): string {
  return hosts
    .map((h) => {
      const t = h.trim();
      if (t.startsWith('[')) return t;
      if (/^\d+\.\d+\.\d+\.\d+(:\d+)?$/.test(t)) {
        const [ip, port] = t.split(':');
        return port ? `[${ip}]:${port}` : `[${ip}]`;
      }
      if (t.includes(':') && /^[0-9a-f:.]+$/i.test(t)) return `[${t}]`;
      return t.toLowerCase();
    })
    .join(',');
}

/**
 * true when a smart host is one of this server's own Receive connector listeners: its name is
 * ours (or loopback) and its port is one we listen on. A loopback smart host on another port (a
 * local filter, a sink) is a different program, not a loop.
 */
// A config object never changes (a reload builds a new one), so its identity is worked out once.
const identities = new WeakMap<Config, Map<string, SelfIdentity>>();

/** "This server" from the config alone: no interface addresses (the Send side also checks what a name resolves to). */
function configIdentity(config: Config, selfNames: ReadonlySet<string>): SelfIdentity {
  let byNames = identities.get(config);
  if (!byNames) identities.set(config, (byNames = new Map()));
  const key = [...selfNames].join(' ');
  let self = byNames.get(key);
  if (!self) byNames.set(key, (self = selfIdentity({ names: selfNames, endpoints: configuredEndpoints(config), interfaceAddresses: [] })));
  return self;
}

function isOwnListener(config: Config, selfNames: ReadonlySet<string>, smartHost: string, defaultPort: number): boolean {
  const host = smartHostName(smartHost);
  const portText = /:(\d+)$/.exec(smartHost.trim().replace(/^\[[^\]]*\]/, (m) => m.replace(/:/g, '')))?.[1];
  const port = portText ? Number(portText) : defaultPort;
  const self = configIdentity(config, selfNames);
  return isSelfHost(self, { name: host, port, ips: parseIp(host) ? [host] : [] }, { nameNeedsListener: true });
}

function smartHostName(h: string): string {
  const t = h.trim();
  if (t.startsWith('[')) return t.slice(1, t.indexOf(']')).toLowerCase();
  if (/^[^:]+:\d+$/.test(t)) return t.slice(0, t.lastIndexOf(':')).toLowerCase();
  return t.toLowerCase();
}

function spaceLabel(space: AddressSpace): string {
  return space.type === 'SMTP' ? space.address : `${space.type}:${space.address}`;
}

/**
 * Decisions for SMTP domains, per config object (a reload builds a new one). A decision depends on
 * the message size only through "maxMessageSize < size" for the connectors that matched, so an
 * entry holds for every size in (lo, hi]. Decisions whose texts quote the size are not kept.
 */
interface CachedDecision {
  readonly decision: RoutingDecision;
  readonly lo: number;
  readonly hi: number;
}
const DECISION_CACHE_LIMIT = 10_000;
const decisionCache = new WeakMap<Config, Map<string, CachedDecision>>();

/** Resolves one recipient to a next hop (or unroutable) with an explanation. */
export function resolveRecipient(config: Config, recipient: string, opts: ResolveOptions): RoutingDecision {
  const addr = routingAddressOf(recipient);
  if (!addr) {
    return { kind: 'unroutable', action: 'ndr', enhanced: '5.1.3', reason: `"${recipient}" is not a valid address`, candidates: [] };
  }
  if (addr.type !== 'SMTP') return decide(config, recipient, addr, opts, []);
  let byDomain = decisionCache.get(config);
  if (!byDomain) decisionCache.set(config, (byDomain = new Map()));
  const key = `${opts.localServer ?? config.server.name}\n${(addr as { domain: string }).domain}`;
  const hit = byDomain.get(key);
  if (hit && opts.size > hit.lo && opts.size <= hit.hi) return hit.decision;
  const sizes: number[] = [];
  const decision = decide(config, recipient, addr, opts, sizes);
  // A size-dependent text (a candidate dropped for size, and so also the 5.3.4 reason) is never kept.
  if (!decision.candidates.some((c) => c.reason.startsWith('message size'))) {
    let lo = -Infinity;
    let hi = Infinity;
    for (const max of sizes) {
      if (max < opts.size) lo = Math.max(lo, max);
      else hi = Math.min(hi, max);
    }
    if (byDomain.size >= DECISION_CACHE_LIMIT) byDomain.clear();
    byDomain.set(key, { decision, lo, hi });
  }
  return decision;
}

/** The decision itself; `sizes` collects the maxMessageSize of every connector that matched. */
function decide(config: Config, recipient: string, addr: RoutingAddress, opts: ResolveOptions, sizes: number[]): RoutingDecision {
  const localServer = opts.localServer ?? config.server.name;
  const ts = config.transportService;
  const isSmtp = addr.type === 'SMTP';
  const domain = isSmtp ? (addr as { domain: string }).domain : '';

  // 1. Accepted domains.
  if (isSmtp) {
    const ad = matchAcceptedDomain(config, domain);
    if (ad && ad.domainType === 'Authoritative') {
      const cand: Candidate = {
        connector: 'mailbox',
        connectorType: 'mailbox',
        addressSpace: ad.domainName,
        cost: 0,
        kept: true,
        reason: `accepted domain ${ad.domainName} is Authoritative: delivered to a local mailbox`,
      };
      return { kind: 'routed', key: MAILBOX_KEY, connectorType: 'mailbox', addressSpace: ad.domainName, cost: 0, candidates: [cand] };
    }
  }

  // 2. Connectors with a matching address space (best space per connector).
  const localSite = siteOf(config, localServer, localServer) ?? config.server.site;
  const selfNames = new Set([config.server.fqdn.toLowerCase(), localServer.toLowerCase(), 'localhost', '127.0.0.1', '::1']);
  const options: Option[] = [];
  const consider = (
    name: string,
    kind: ConnectorKind,
    spaces: readonly AddressSpace[],
    enabled: boolean,
    maxSize: number,
    scoped: boolean,
    sources: readonly string[],
    keyFor: (space: AddressSpace) => NextHopKey,
    extraDrop: (space: AddressSpace) => string | undefined,
  ) => {
    let best: AddressSpace | undefined;
    let bestSpec = -1;
    for (const s of spaces) {
      const spec = specificityOf(s, addr);
      if (spec > bestSpec || (spec === bestSpec && spec >= 0 && best && s.cost < best.cost)) {
        best = s;
        bestSpec = spec;
      }
    }
    if (!best || bestSpec < 0) return;
    sizes.push(maxSize);
    const srcs = sources.length ? sources : [localServer];
    let hopRank = 2;
    let cheapest = Infinity;
    for (const s of srcs) {
      const site = siteOf(config, s, localServer);
      const rank = s.toLowerCase() === localServer.toLowerCase() ? 0 : site !== undefined && site.toLowerCase() === localSite.toLowerCase() ? 1 : 2;
      hopRank = Math.min(hopRank, rank);
      cheapest = Math.min(cheapest, siteLinkCost(config, localSite, site));
    }
    const opt: Option = { name, kind, space: best, specificity: bestSpec, aggregateCost: best.cost + (Number.isFinite(cheapest) ? cheapest : 0), hopRank, key: keyFor(best) };
    if (!enabled) opt.dropped = 'connector is disabled';
    else if (scoped && !srcs.some((s) => (siteOf(config, s, localServer) ?? '').toLowerCase() === localSite.toLowerCase())) {
      opt.dropped = `scoped connector: its source servers are not in this server's site (${localSite})`;
    } else if (maxSize < opts.size) opt.dropped = `message size ${opts.size} exceeds the connector's maxMessageSize ${maxSize}`;
    else {
      const extra = extraDrop(best);
      if (extra) opt.dropped = extra;
    }
    options.push(opt);
  };

  for (const c of config.sendConnectors) {
    const smartHosts = c.smartHosts ?? [];
    const useSmartHosts = !c.dnsRoutingEnabled && smartHosts.length > 0;
    consider(
      c.name,
      'send',
      c.addressSpaces,
      c.enabled,
      c.maxMessageSize,
      c.isScopedConnector,
      c.sourceTransportServers,
      () =>
        useSmartHosts
          ? { deliveryType: 'SmartHostConnectorDelivery', nextHopDomain: formatSmartHosts(smartHosts), connector: c.name }
          : { deliveryType: 'DnsConnectorDelivery', nextHopDomain: isSmtp ? domain : recipient, connector: c.name },
      (space) => {
        if (space.type !== 'SMTP' && !useSmartHosts) return `non-SMTP address space ${space.text} needs smart-host routing`;
        if (useSmartHosts && smartHosts.some((h) => isOwnListener(config, selfNames, h, c.port))) return 'a smart host is this server itself (mail loop)';
        return undefined;
      },
    );
  }
  for (const c of config.foreignConnectors) {
    consider(c.name, 'foreign', c.addressSpaces, c.enabled, c.maxMessageSize, c.isScopedConnector, c.sourceTransportServers,
      (space) => ({ deliveryType: 'NonSmtpGatewayDelivery' as DeliveryType, nextHopDomain: spaceLabel(space), connector: c.name }), () => undefined);
  }
  for (const c of config.deliveryAgentConnectors) {
    consider(c.name, 'deliveryAgent', c.addressSpaces, c.enabled, c.maxMessageSize, c.isScopedConnector, c.sourceTransportServers,
      (space) => ({ deliveryType: 'DeliveryAgent' as DeliveryType, nextHopDomain: spaceLabel(space), connector: c.name }), () => undefined);
  }

  // 3 + 4. Rank the survivors.
  const alive = options.filter((o) => !o.dropped);
  const ranked = [...alive].sort(
    (a, b) =>
      b.specificity - a.specificity ||
      a.aggregateCost - b.aggregateCost ||
      a.hopRank - b.hopRank ||
      a.name.toLowerCase().localeCompare(b.name.toLowerCase(), 'en') ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  const winner = ranked[0];
  if (winner) {
    for (const o of alive) {
      if (o === winner) continue;
      if (o.specificity < winner.specificity) o.dropped = `address space ${o.space.text} is less specific than ${winner.space.text}`;
      else if (o.aggregateCost > winner.aggregateCost) o.dropped = `cost ${o.aggregateCost} is higher than ${winner.aggregateCost}`;
      else if (o.hopRank > winner.hopRank) o.dropped = `source servers are farther than those of "${winner.name}"`;
      else o.dropped = `tie on specificity, cost and source server: "${winner.name}" comes first by name`;
    }
  }
  const candidates: Candidate[] = options.map((o) => ({
    connector: o.name,
    connectorType: o.kind,
    addressSpace: o.space.text,
    cost: o.aggregateCost,
    kept: o === winner,
    reason: o === winner ? `chosen: most specific match (${o.space.text}), lowest cost ${o.aggregateCost}` : o.dropped ?? '',
  }));

  if (winner) {
    return { kind: 'routed', key: winner.key, connectorType: winner.kind, addressSpace: winner.space.text, cost: winner.aggregateCost, candidates };
  }
  if (options.some((o) => o.dropped?.startsWith('message size'))) {
    return {
      kind: 'unroutable',
      action: 'ndr',
      enhanced: '5.3.4',
      reason: `the message (${opts.size} bytes) is larger than every connector that could carry it allows`,
      candidates,
    };
  }
  if (options.length && options.every((o) => o.dropped?.includes('mail loop'))) {
    return { kind: 'unroutable', action: 'ndr', enhanced: '5.4.6', reason: 'every matching connector leads back to this server (mail loop)', candidates };
  }
  const reason = options.length
    ? 'A matching connector cannot be found to route the external recipient (every matching connector was dropped)'
    : 'A matching connector cannot be found to route the external recipient';
  const action = !isSmtp || ts.unreachableAction === 'ndr' ? 'ndr' : 'queue';
  return { kind: 'unroutable', action, enhanced: '5.4.4', reason, candidates };
}
