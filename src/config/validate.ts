/**
 * Semantic checks on a configuration that already has the right shape (schema.ts): the rules
 * Exchange enforces when a connector is created or changed, and the cross-key rules of Mailyard.
 * Each problem is returned with the key path it is about, so load.ts can point at the YAML node;
 * when the key was not written (a default), the path still names it and the position falls back
 * to the nearest enclosing node. Every problem is reported, not just the first. Pure.
 */
import {
  isAddressSpace,
  isBinding,
  isIpRange,
  parseAddressSpace,
  parseBinding,
  parseIp,
  parseIpRange,
  rangeCovers,
  rangesOverlap,
  type Binding,
  type IpRange,
} from '../model/index.js';
import { defaultReceiveConnectors, resolveReceiveConnector, RECEIVE_USAGE_PRESETS } from './defaults.js';
import { suggest, type IssueSeverity, type KeyPath } from './errors.js';
import { normalizePermission, permissionSpellings } from './permissions.js';
import { receiveConnectorSchema, type ParsedConfig, type ParsedReceiveConnector } from './schema.js';

export interface SemanticIssue {
  readonly path: KeyPath;
  readonly message: string;
  readonly severity: IssueSeverity;
}

/** The five default Receive connectors for server.name, run through the connector schema. */
export function parsedDefaultReceiveConnectors(parsed: ParsedConfig): ParsedReceiveConnector[] {
  const hasPeers = parsed.organization.servers.some((s) => s.name.toLowerCase() !== parsed.server.name.toLowerCase());
  return defaultReceiveConnectors(parsed.server.name, hasPeers).map((c) => receiveConnectorSchema.parse(c));
}

/** A domain name as written in accepted domains and address spaces: labels of letters, digits and hyphens. */
export function isDomainName(text: string): boolean {
  const d = text.endsWith('.') ? text.slice(0, -1) : text;
  if (d.length === 0 || d.length > 253) return false;
  return d.split('.').every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(l));
}

/** "IP", "[IP]", "IPv4:port", "[IPv6]:port" or a bare IPv6 address; returns undefined when it is none of these. */
export function parseHostPort(text: string, allowNames: boolean): { host: string; port?: number } | undefined {
  const t = text.trim();
  let host: string;
  let port: string | undefined;
  const br = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(t);
  if (br) {
    host = br[1]!;
    port = br[2];
    if (!parseIp(host)) return undefined;
  } else if ((t.match(/:/g) ?? []).length > 1) {
    host = t;
    if (!parseIp(host)) return undefined;
  } else {
    const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(t);
    if (!m) return undefined;
    host = m[1]!;
    port = m[2];
    if (!parseIp(host) && !(allowNames && isDomainName(host) && /[a-z]/i.test(host))) return undefined;
  }
  if (port !== undefined) {
    const n = Number(port);
    if (n < 1 || n > 65535) return undefined;
    return { host, port: n };
  }
  return { host };
}

function isLoopback(b: Binding): boolean {
  return b.family === 4 ? b.address.startsWith('127.') : b.address === '::1';
}

const q = (s: string) => JSON.stringify(s);

export function validateSemantics(parsed: ParsedConfig): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  const error = (path: KeyPath, message: string) => issues.push({ path, message, severity: 'error' });
  const warning = (path: KeyPath, message: string) => issues.push({ path, message, severity: 'warning' });

  checkServer(parsed, error);
  checkAcceptedDomains(parsed, error);
  checkReceive(parsed, error, warning);
  checkOutbound(parsed, error, warning);
  checkTransportService(parsed, error, warning);
  return issues;
}

type Report = (path: KeyPath, message: string) => void;

function checkServer(parsed: ParsedConfig, error: Report): void {
  const admin = parseBinding(parsed.server.admin.listen);
  if (!isBinding(admin)) error(['server', 'admin', 'listen'], `${admin.error}; the admin API listens on "IP:port", e.g. "127.0.0.1:8025"`);
  else if (!isLoopback(admin) && !parsed.server.admin.allowNonLoopback) {
    error(['server', 'admin', 'listen'], `admin API address ${q(admin.text)} is not a loopback address; set server.admin.allowNonLoopback: true to expose it`);
  }
  (parsed.dns.servers ?? []).forEach((s, i) => {
    const hp = parseHostPort(s, false);
    if (!hp) error(['dns', 'servers', i], `bad DNS server ${q(s)}: expected "IP" or "IP:port" ("[IPv6]:port")`);
  });
  const md = parsed.mailboxDelivery;
  if (md.type === 'lmtp') {
    if (!md.lmtp || (!md.lmtp.host && !md.lmtp.socket)) error(['mailboxDelivery', 'lmtp'], 'mailboxDelivery.type lmtp needs lmtp.host (and port) or lmtp.socket');
    else if (md.lmtp.host && md.lmtp.socket) error(['mailboxDelivery', 'lmtp'], 'give lmtp.host or lmtp.socket, not both');
  }
  const tls = parsed.tls;
  if (tls.certFile && !tls.keyFile) error(['tls', 'certFile'], 'tls.certFile needs tls.keyFile');
  if (tls.keyFile && !tls.certFile) error(['tls', 'keyFile'], 'tls.keyFile needs tls.certFile');
  const seen = new Map<string, number>();
  parsed.organization.servers.forEach((s, i) => {
    const k = s.name.toLowerCase();
    const first = seen.get(k);
    if (first !== undefined) error(['organization', 'servers', i, 'name'], `duplicate server name ${q(s.name)} (also organization.servers[${first}])`);
    else seen.set(k, i);
  });
}

function checkAcceptedDomains(parsed: ParsedConfig, error: Report): void {
  const seen = new Map<string, number>();
  let firstDefault: number | undefined;
  parsed.acceptedDomains.forEach((d, i) => {
    const name = d.domainName.trim();
    const bare = name.startsWith('*.') ? name.slice(2) : name;
    if (!isDomainName(bare)) {
      error(['acceptedDomains', i, 'domainName'], `accepted domain ${q(name)} is not a domain name; use "contoso.com" or "*.contoso.com"`);
    }
    const k = name.toLowerCase();
    const first = seen.get(k);
    if (first !== undefined) error(['acceptedDomains', i, 'domainName'], `duplicate accepted domain ${q(name)} (also acceptedDomains[${first}])`);
    else seen.set(k, i);
    if (d.default) {
      if (firstDefault !== undefined) error(['acceptedDomains', i, 'default'], `more than one default accepted domain (acceptedDomains[${firstDefault}] is already the default)`);
      else firstDefault = i;
    }
  });
}

interface RecvInfo {
  readonly index: number;
  readonly name: string;
  readonly role: string;
  readonly bindings: (Binding | undefined)[];
  readonly ranges: (IpRange | undefined)[];
  readonly rangesOk: boolean;
}

function checkReceive(parsed: ParsedConfig, error: Report, warning: Report): void {
  const list = parsed.receiveConnectors ?? parsedDefaultReceiveConnectors(parsed);
  const hasCert = Boolean(parsed.tls.certFile) || parsed.tls.certificates.length > 0;
  const names = new Map<string, number>();
  const infos: RecvInfo[] = [];
  const tlsWithoutCert: string[] = [];

  list.forEach((p, i) => {
    const base: KeyPath = ['receiveConnectors', i];
    const at = (...k: (string | number)[]): KeyPath => [...base, ...k];
    const c = resolveReceiveConnector(p, parsed.server);
    const who = `Receive connector ${q(c.name)}`;

    const key = c.name.toLowerCase();
    const first = names.get(key);
    if (first !== undefined) error(at('name'), `duplicate Receive connector name ${q(c.name)} (also receiveConnectors[${first}])`);
    else names.set(key, i);

    if (c.bindings.length === 0) {
      const usage = p.usage ?? 'Custom';
      error(base, `${who} has no bindings: usage ${usage} gives no default binding, so add bindings: ["IP:port"]`);
    }
    const bindings = c.bindings.map((b, j) => {
      const r = parseBinding(b);
      if (isBinding(r)) return r;
      error(at('bindings', j), r.error);
      return undefined;
    });
    let rangesOk = true;
    const ranges = c.remoteIPRanges.map((r, j) => {
      const x = parseIpRange(r);
      if (isIpRange(x)) return x;
      rangesOk = false;
      error(at('remoteIPRanges', j), x.error);
      return undefined;
    });
    infos.push({ index: i, name: c.name, role: c.transportRole, bindings, ranges, rangesOk });

    // Exchange's AuthMechanism rules (reference 2.3).
    const auth = new Set<string>(c.authMechanism);
    const authPath = p.authMechanism ? at('authMechanism') : p.usage ? at('usage') : base;
    if (auth.has('None') && auth.size > 1) error(authPath, `${who}: authMechanism None may only be used alone`);
    if (auth.has('BasicAuthRequireTLS') && !(auth.has('BasicAuth') && auth.has('Tls'))) {
      error(authPath, `${who}: authMechanism BasicAuthRequireTLS needs BasicAuth and Tls as well`);
    }
    if (auth.has('ExternalAuthoritative')) {
      const others = [...auth].filter((a) => a !== 'ExternalAuthoritative' && a !== 'Tls');
      if (others.length > 0) error(authPath, `${who}: authMechanism ExternalAuthoritative may only be combined with Tls (not ${others.join(', ')})`);
      if (!c.permissionGroups.includes('ExchangeServers')) {
        error(p.permissionGroups ? at('permissionGroups') : authPath, `${who}: authMechanism ExternalAuthoritative needs permissionGroups ExchangeServers`);
      }
    }
    if (c.requireTLS && !auth.has('Tls')) error(at('requireTLS'), `${who}: requireTLS needs Tls in authMechanism`);
    if (c.tlsMode === 'implicit' && !auth.has('Tls')) error(at('tlsMode'), `${who}: tlsMode implicit needs Tls in authMechanism`);
    if (c.domainSecureEnabled) {
      if (!auth.has('Tls')) error(at('domainSecureEnabled'), `${who}: domainSecureEnabled needs Tls in authMechanism`);
      if (auth.has('ExternalAuthoritative')) error(at('domainSecureEnabled'), `${who}: domainSecureEnabled cannot be combined with ExternalAuthoritative`);
    }
    if (!hasCert && (c.tlsMode === 'implicit' || c.requireTLS)) {
      error(at(c.tlsMode === 'implicit' ? 'tlsMode' : 'requireTLS'), `${who} requires TLS but no certificate is configured (tls.certFile and tls.keyFile)`);
    } else if (!hasCert && auth.has('Tls') && c.enabled) {
      tlsWithoutCert.push(c.name);
    }

    const groups = new Set<string>(c.permissionGroups);
    if (groups.has('None') && groups.size > 1) error(p.permissionGroups ? at('permissionGroups') : base, `${who}: permissionGroups None may only be used alone`);

    const normalized = c.permissions.map((perm, j) => {
      const n = normalizePermission(perm);
      if (!n) {
        const s = suggest(perm, permissionSpellings());
        error(at('permissions', j), `unknown permission ${q(perm)}${s ? `; did you mean ${q(s)}?` : ''}`);
      }
      return n;
    });
    if ([...groups].every((g) => g === 'None' || g === 'Custom') && normalized.length === 0) {
      warning(p.permissionGroups ? at('permissionGroups') : base, `${who} grants no permissions (permissionGroups ${[...groups].join(', ')} and no permissions): it accepts no mail`);
    }

    if (c.connectionInactivityTimeout >= c.connectionTimeout) {
      error(at('connectionInactivityTimeout'), `${who}: connectionInactivityTimeout must be shorter than connectionTimeout`);
    }
    if (p.banner !== undefined) {
      if (!p.banner.startsWith('220')) error(at('banner'), `${who}: banner must start with "220"`);
      else if (/[\r\n]/.test(p.banner)) error(at('banner'), `${who}: banner must be a single line`);
    }
    if (c.chunkingEnabled) error(at('chunkingEnabled'), `${who}: chunkingEnabled: true is not supported (the SMTP server library has no BDAT/CHUNKING); remove it or set false`);
  });

  if (tlsWithoutCert.length > 0) {
    warning(['tls'], `no TLS certificate is configured (tls.certFile): STARTTLS will not be offered on ${tlsWithoutCert.map(q).join(', ')}`);
  }

  // Listener rules across connectors (reference 2.7): one service per port; on a shared binding
  // remote ranges must differ, and may overlap only by nesting.
  const portRole = new Map<number, RecvInfo>();
  for (const info of infos) {
    info.bindings.forEach((b, j) => {
      if (!b) return;
      const other = portRole.get(b.port);
      if (other && other.role !== info.role) {
        error(['receiveConnectors', info.index, 'bindings', j], `Receive connector ${q(info.name)} (${info.role}) uses port ${b.port}, which ${q(other.name)} (${other.role}) already uses; FrontendTransport and HubTransport connectors cannot share a port`);
      } else if (!other) portRole.set(b.port, info);
    });
  }
  const reported = new Set<string>();
  for (let x = 0; x < infos.length; x++) {
    for (let y = x + 1; y < infos.length; y++) {
      const a = infos[x]!;
      const b = infos[y]!;
      if (!a.rangesOk || !b.rangesOk) continue;
      const shared = a.bindings.find((ba) => ba && b.bindings.some((bb) => bb && bb.address === ba.address && bb.port === ba.port));
      if (!shared) continue;
      const bindingText = `${shared.address.includes(':') ? `[${shared.address}]` : shared.address}:${shared.port}`;
      const ra = a.ranges as IpRange[];
      const rb = b.ranges as IpRange[];
      const same = (r: IpRange, s: IpRange) => r.family === s.family && r.first === s.first && r.last === s.last;
      if (ra.length === rb.length && ra.every((r) => rb.some((s) => same(r, s))) && rb.every((s) => ra.some((r) => same(r, s)))) {
        error(['receiveConnectors', b.index, 'remoteIPRanges'], `Receive connector ${q(b.name)} has the same binding ${bindingText} and the same remote IP ranges as ${q(a.name)}; every connector needs a unique combination`);
        continue;
      }
      rb.forEach((s, j) => {
        for (const r of ra) {
          let msg: string | undefined;
          if (same(r, s)) msg = `remote IP range ${q(s.text)} is also on ${q(a.name)} with the same binding ${bindingText}; a client in it would match both connectors`;
          else if (rangesOverlap(r, s) && !rangeCovers(r, s) && !rangeCovers(s, r)) {
            msg = `remote IP range ${q(s.text)} partially overlaps ${q(r.text)} of ${q(a.name)} on binding ${bindingText}; ranges on a shared binding must nest or be disjoint`;
          }
          if (msg && !reported.has(`${b.index}/${j}/${msg}`)) {
            reported.add(`${b.index}/${j}/${msg}`);
            error(['receiveConnectors', b.index, 'remoteIPRanges', j], msg);
          }
        }
      });
    }
  }
}

function checkOutbound(parsed: ParsedConfig, error: Report, warning: Report): void {
  const names = new Map<string, string>();
  const servers = new Set([parsed.server.name.toLowerCase(), ...parsed.organization.servers.map((s) => s.name.toLowerCase())]);
  const checkName = (path: KeyPath, name: string, label: string) => {
    const k = name.toLowerCase();
    const first = names.get(k);
    if (first !== undefined) error([...path, 'name'], `duplicate connector name ${q(name)} (also ${first}); Send, Foreign and Delivery Agent connectors share one name space`);
    else names.set(k, label);
  };
  const checkSources = (path: KeyPath, list: readonly string[] | undefined) => {
    list?.forEach((s, j) => {
      if (!servers.has(s.toLowerCase())) error([...path, 'sourceTransportServers', j], `unknown source transport server ${q(s)}: not server.name and not in organization.servers`);
    });
  };
  const checkSpaces = (path: KeyPath, spaces: readonly (string | { type: string; address: string; cost: number })[], smtpOnly: string | undefined) => {
    spaces.forEach((s, j) => {
      const a = parseAddressSpace(s);
      if (!isAddressSpace(a)) error([...path, 'addressSpaces', j], a.error);
      else if (smtpOnly && a.type !== 'SMTP') error([...path, 'addressSpaces', j], `address space ${q(a.text)} is not SMTP: ${smtpOnly}`);
    });
  };

  parsed.sendConnectors.forEach((c, i) => {
    const base: KeyPath = ['sendConnectors', i];
    const who = `Send connector ${q(c.name)}`;
    checkName(base, c.name, `sendConnectors[${i}]`);
    const hasSmartHosts = (c.smartHosts?.length ?? 0) > 0;
    const dns = c.dnsRoutingEnabled ?? !hasSmartHosts;
    checkSpaces(base, c.addressSpaces, dns ? 'a connector that uses DNS routing carries SMTP address spaces only; route other types through smartHosts, a Foreign or a Delivery Agent connector' : undefined);
    if (c.dnsRoutingEnabled === true && hasSmartHosts) error([...base, 'dnsRoutingEnabled'], `${who}: dnsRoutingEnabled must be false when smartHosts is set`);
    if (c.dnsRoutingEnabled === false && !hasSmartHosts) error([...base, 'dnsRoutingEnabled'], `${who}: dnsRoutingEnabled false needs smartHosts`);
    c.smartHosts?.forEach((h, j) => {
      if (!parseHostPort(h, true)) error([...base, 'smartHosts', j], `bad smart host ${q(h)}: expected an IP address, [IP] or a host name, with an optional :port`);
    });
    if ((c.smartHostAuthMechanism === 'BasicAuth' || c.smartHostAuthMechanism === 'BasicAuthRequireTLS') && !c.authenticationCredential) {
      error([...base, 'smartHostAuthMechanism'], `${who}: smartHostAuthMechanism ${c.smartHostAuthMechanism} needs authenticationCredential { username, passwordFile }`);
    }
    if (c.authenticationCredential && c.smartHostAuthMechanism !== 'BasicAuth' && c.smartHostAuthMechanism !== 'BasicAuthRequireTLS') {
      warning([...base, 'authenticationCredential'], `${who}: authenticationCredential is ignored unless smartHostAuthMechanism is BasicAuth or BasicAuthRequireTLS`);
    }
    if (c.tlsAuthLevel !== undefined && !c.requireTLS) error([...base, 'tlsAuthLevel'], `${who}: tlsAuthLevel needs requireTLS: true`);
    if (c.ignoreStartTls && c.requireTLS) error([...base, 'ignoreStartTls'], `${who}: ignoreStartTls cannot be true together with requireTLS`);
    if (c.tlsAuthLevel === 'DomainValidation' && !dns && !c.tlsDomain) {
      error([...base, 'tlsAuthLevel'], `${who}: tlsAuthLevel DomainValidation on a smart host connector needs tlsDomain`);
    }
    if (c.tlsDomain !== undefined && !isDomainName(c.tlsDomain.replace(/^\*\./, ''))) error([...base, 'tlsDomain'], `${who}: tlsDomain ${q(c.tlsDomain)} is not a domain name`);
    if (c.sourceIPAddress !== undefined && !parseIp(c.sourceIPAddress)) error([...base, 'sourceIPAddress'], `${who}: sourceIPAddress ${q(c.sourceIPAddress)} is not an IP address`);
    checkSources(base, c.sourceTransportServers);
  });

  parsed.foreignConnectors.forEach((c, i) => {
    const base: KeyPath = ['foreignConnectors', i];
    checkName(base, c.name, `foreignConnectors[${i}]`);
    checkSpaces(base, c.addressSpaces, undefined);
    checkSources(base, c.sourceTransportServers);
  });

  parsed.deliveryAgentConnectors.forEach((c, i) => {
    const base: KeyPath = ['deliveryAgentConnectors', i];
    const who = `Delivery Agent connector ${q(c.name)}`;
    checkName(base, c.name, `deliveryAgentConnectors[${i}]`);
    checkSpaces(base, c.addressSpaces, undefined);
    checkSources(base, c.sourceTransportServers);
    switch (c.deliveryProtocol) {
      case 'http':
        if (!c.url) error(base, `${who}: deliveryProtocol http needs url`);
        else if (!/^https?:\/\/[^/\s]+/i.test(c.url) || !URL.canParse(c.url)) error([...base, 'url'], `${who}: url ${q(c.url)} is not an http:// or https:// URL`);
        break;
      case 'lmtp':
        if (!c.host && !c.socket) error(base, `${who}: deliveryProtocol lmtp needs host (and port) or socket`);
        else if (c.host && c.socket) error([...base, 'socket'], `${who}: give host or socket, not both`);
        break;
      case 'maildir':
        if (!c.maildirRoot) error(base, `${who}: deliveryProtocol maildir needs maildirRoot`);
        break;
    }
  });
}

function checkTransportService(parsed: ParsedConfig, error: Report, warning: Report): void {
  const t = parsed.transportService;
  const base: KeyPath = ['transportService'];
  if (t.maxPerDomainOutboundConnections > t.maxOutboundConnections) {
    error([...base, 'maxPerDomainOutboundConnections'], 'maxPerDomainOutboundConnections cannot be larger than maxOutboundConnections');
  }
  if (t.delayNotificationTimeout >= t.messageExpirationTimeout) {
    warning([...base, 'delayNotificationTimeout'], 'delayNotificationTimeout is not shorter than messageExpirationTimeout: no delay notification will be sent before messages expire');
  }
}

/** For docs and tests: the usages whose preset gives no binding. */
export const USAGES_WITHOUT_BINDINGS = Object.entries(RECEIVE_USAGE_PRESETS)
  .filter(([, p]) => !p.bindings)
  .map(([u]) => u);
