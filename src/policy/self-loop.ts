/**
 * Self-loop detection for SMTP delivery (RFC 5321 5.1): is a host we are about to connect to this
 * very server, and which MX hosts remain once we find ourselves among them. Pure: the identity of
 * "us" (names, listening endpoints, local interface addresses) is a parameter, gathered by the
 * agent's thin I/O layer from the config, the bound Receive connectors and os.networkInterfaces().
 *
 * Promises:
 * - an address:port is ours when a Receive connector listens on exactly that address and port, or
 *   on a wildcard of that port (0.0.0.0: any local IPv4 address; [::]: any local address, IPv4
 *   too, as a dual-stack socket takes both) where local means an interface address, 127.0.0.0/8,
 *   ::1, or the unspecified address (a connect to 0.0.0.0 reaches the local host);
 * - a host is ours when its name is one of our FQDNs or any of its addresses is ours on the port
 *   we would connect to; for smart hosts a name match also needs a listener on that port (another
 *   port on our own name is another program: a content filter, a local relay);
 * - MX rule: when ours, every host with a preference equal to or greater than our lowest one is
 *   dropped; only the more preferred hosts stay, in the order given; none left → a loop;
 * - smart hosts that are ours are dropped; none left → a loop;
 * - a host whose addresses are unknown (lookup failed) is not ours unless its name says so.
 */
import { isBinding, parseBinding, parseIp, type IpAddress } from '../model/ip-range.js';

/** One listening endpoint of this server; `address` may be a wildcard ("0.0.0.0", "::"). */
export interface SelfEndpoint {
  readonly address: string;
  readonly port: number;
}

/** Who "we" are, normalized by selfIdentity(). */
export interface SelfIdentity {
  /** Our host names, lower case, no trailing dot. */
  readonly names: ReadonlySet<string>;
  /** Exact listening endpoints as "ip|port" (canonical IP text). */
  readonly exact: ReadonlySet<string>;
  /** Ports bound on 0.0.0.0. */
  readonly wildcard4: ReadonlySet<number>;
  /** Ports bound on [::] (dual stack: IPv4 too). */
  readonly wildcard6: ReadonlySet<number>;
  /** Every port we listen on, for name matches of smart hosts. */
  readonly ports: ReadonlySet<number>;
  /** Local interface addresses (canonical text), loopback and unspecified excluded (always local). */
  readonly local: ReadonlySet<string>;
}

export interface SelfIdentityInput {
  readonly names: Iterable<string>;
  readonly endpoints: Iterable<SelfEndpoint>;
  readonly interfaceAddresses: Iterable<string>;
}

function cleanName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

export function selfIdentity(input: SelfIdentityInput): SelfIdentity {
  const names = new Set<string>();
  for (const n of input.names) {
    const c = cleanName(n);
    if (c) names.add(c);
  }
  const exact = new Set<string>();
  const wildcard4 = new Set<number>();
  const wildcard6 = new Set<number>();
  const ports = new Set<number>();
  for (const e of input.endpoints) {
    const ip = parseIp(e.address);
    if (!ip || !Number.isInteger(e.port) || e.port <= 0) continue;
    ports.add(e.port);
    if (ip.value === 0n) (ip.family === 4 ? wildcard4 : wildcard6).add(e.port);
    else exact.add(`${ip.text}|${e.port}`);
  }
  const local = new Set<string>();
  for (const a of input.interfaceAddresses) {
    const ip = parseIp(a);
    if (ip) local.add(ip.text);
  }
  return { names, exact, wildcard4, wildcard6, ports, local };
}

/** Loopback (127/8, ::1) or unspecified (0.0.0.0, ::): always this machine. */
function alwaysLocal(ip: IpAddress): boolean {
  if (ip.value === 0n) return true;
  if (ip.family === 4) return ip.value >> 24n === 127n;
  return ip.value === 1n;
}

/** True when connecting to ip:port reaches one of our own listeners. */
export function isSelfAddress(self: SelfIdentity, ipText: string, port: number): boolean {
  const ip = parseIp(ipText);
  if (!ip) return false;
  if (self.exact.has(`${ip.text}|${port}`)) return true;
  // A connect to the unspecified address lands on loopback.
  if (ip.value === 0n && (self.exact.has(`${ip.family === 4 ? '127.0.0.1' : '::1'}|${port}`))) return true;
  const local = alwaysLocal(ip) || self.local.has(ip.text);
  if (!local) return false;
  if (self.wildcard6.has(port)) return true;
  return ip.family === 4 && self.wildcard4.has(port);
}

export interface HostToCheck {
  /** Host name (lower case) or an IP address for literals / IP smart hosts. */
  readonly name: string;
  /** The port we would connect to. */
  readonly port: number;
  /** Resolved addresses; undefined or empty when unknown. */
  readonly ips?: readonly string[];
}

/**
 * Whether a host is this server. `nameNeedsListener`: a name match counts only when we listen on
 * the host's port (smart hosts); for MX hosts a name of ours is us whatever the port (behind a
 * port forward, our MX may reach us on another port).
 */
export function isSelfHost(self: SelfIdentity, host: HostToCheck, opts: { nameNeedsListener?: boolean } = {}): boolean {
  if (self.names.has(cleanName(host.name)) && (!opts.nameNeedsListener || self.ports.has(host.port))) return true;
  return (host.ips ?? []).some((ip) => isSelfAddress(self, ip, host.port));
}

export interface MxCandidate extends HostToCheck {
  readonly preference: number;
}

export type SelfMxDecision<H extends MxCandidate> =
  /** `self`: our own most preferred entry when one was found (hosts were pruned), else undefined. */
  | { readonly kind: 'hosts'; readonly hosts: readonly H[]; readonly self?: H; readonly discarded: readonly H[] }
  /** We are (one of) the most preferred hosts: nothing better to hand the mail to. */
  | { readonly kind: 'loop'; readonly self: H };

/** RFC 5321 5.1: drop every MX host at or below our own lowest preference value. */
export function pruneSelfMx<H extends MxCandidate>(hosts: readonly H[], self: SelfIdentity): SelfMxDecision<H> {
  let mine: H | undefined;
  for (const h of hosts) {
    if (isSelfHost(self, h) && (mine === undefined || h.preference < mine.preference)) mine = h;
  }
  if (mine === undefined) return { kind: 'hosts', hosts, discarded: [] };
  const cut = mine.preference;
  const kept = hosts.filter((h) => h.preference < cut);
  if (kept.length === 0) return { kind: 'loop', self: mine };
  return { kind: 'hosts', hosts: kept, self: mine, discarded: hosts.filter((h) => h.preference >= cut) };
}

export type SelfSmartHostDecision<H extends HostToCheck> =
  | { readonly kind: 'hosts'; readonly hosts: readonly H[]; readonly discarded: readonly H[] }
  | { readonly kind: 'loop'; readonly self: H };

/** Smart hosts: those that are this server are dropped; when all of them are, it is a loop. */
export function pruneSelfSmartHosts<H extends HostToCheck>(hosts: readonly H[], self: SelfIdentity): SelfSmartHostDecision<H> {
  const discarded = hosts.filter((h) => isSelfHost(self, h, { nameNeedsListener: true }));
  if (discarded.length === 0) return { kind: 'hosts', hosts, discarded };
  const kept = hosts.filter((h) => !discarded.includes(h));
  if (kept.length === 0) return { kind: 'loop', self: discarded[0]! };
  return { kind: 'hosts', hosts: kept, discarded };
}

/** Our names from the config: server.fqdn and every Receive connector's fqdn. */
export function selfNames(config: { readonly server: { readonly fqdn: string }; readonly receiveConnectors: readonly { readonly fqdn?: string }[] }): string[] {
  return [config.server.fqdn, ...config.receiveConnectors.map((rc) => rc.fqdn ?? '')].filter((n) => n.trim() !== '');
}

/** Listening endpoints as configured (enabled Receive connectors); port 0 (chosen at bind time) is left out. */
export function configuredEndpoints(config: { readonly receiveConnectors: readonly { readonly enabled: boolean; readonly bindings: readonly string[] }[] }): SelfEndpoint[] {
  const out: SelfEndpoint[] = [];
  for (const rc of config.receiveConnectors) {
    if (!rc.enabled) continue;
    for (const text of rc.bindings) {
      const b = parseBinding(text);
      if (isBinding(b) && b.port > 0) out.push({ address: b.address, port: b.port });
    }
  }
  return out;
}
