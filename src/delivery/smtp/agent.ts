/**
 * The SMTP delivery agent of one Send connector: takes a DeliveryBatch for a
 * DnsConnectorDelivery or SmartHostConnectorDelivery next hop, finds the hosts (MX or smart
 * hosts), opens or reuses a session, runs the transaction and reports one outcome per recipient.
 * It never touches the spool and never retries later: the queue does that from the outcomes.
 *
 * Promises:
 * - hosts in MX preference order (random among equals), every A/AAAA address of a host before the
 *   next host; smart hosts in configured order; a host that refuses or times out is skipped;
 * - null MX and NXDOMAIN fail at once (5.1.10 / 5.1.2); SERVFAIL and timeouts defer;
 * - never connects to itself (RFC 5321 5.1, see self-loop.ts): every MX host's addresses are
 *   looked up before the first connection; when this server is among the MX hosts, only the more
 *   preferred ones are tried, and when none is more preferred (also an implicit MX or an address
 *   literal that is us) every recipient fails at once with 554 5.4.6; a smart host that is this
 *   server is skipped, and when every smart host is, the batch is deferred with 451 4.4.6 (a
 *   configuration error, so the mail waits for the fix instead of bouncing);
 * - when no host could be reached the result has connectionFailure and every recipient is deferred;
 * - a 421 or a dropped connection mid-transaction never marks a recipient delivered;
 * - an SMTPUTF8 message to a hop without SMTPUTF8 fails with 550 5.6.7; an 8-bit message to a hop
 *   without 8BITMIME is converted to 7 bit (RFC 6152: 8-bit text parts to quoted-printable, other
 *   8-bit parts to base64, see downgrade.ts) and sent without BODY=8BITMIME, whatever its size up to
 *   DOWNGRADE_MAX_BYTES (64 MiB; the connector's maxMessageSize applies before that); when it
 *   cannot be converted (8-bit header fields, 8-bit message/* parts, broken MIME, or larger than
 *   DOWNGRADE_MAX_BYTES) it fails with 554 5.6.3, never goes as is; a message labelled 8-bit that
 *   is in fact 7-bit clean is sent as is. Whether a streamed message is 8-bit is only looked at
 *   when the hop lacks 8BITMIME (a scan that stops at the first 8-bit byte); only a message that
 *   must be converted is read into memory, once, for the conversion;
 * - NOTIFY=SUCCESS on a hop without DSN yields a "relayed" delivered outcome;
 * - sessions are reused for up to smtpMaxMessagesPerConnection messages, idle at most
 *   connectionInactivityTimeout; close() ends them; RSET only after a transaction that did not
 *   complete; a reused session found dead before it answered anything is replaced transparently;
 * - a message up to INLINE_MAX_BYTES is read in one go and written in one go (see prepareData);
 *   larger ones are streamed (a converted one from its chunks in memory).
 */
import { constants, readFileSync } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { Config, SendConnector } from '../../config/defaults.js';
import { domainOf } from '../../model/address.js';
import type { Recipient } from '../../model/envelope.js';
import { parseIp } from '../../model/ip-range.js';
import type { DeliveryAgent, DeliveryBatch, DeliveryResult, RecipientOutcome } from '../../model/outcome.js';
import type { ProtocolLogSink } from '../../model/protocol.js';
import { parseReply, reply as makeReply } from '../../model/reply.js';
import { nextHopKeyString } from '../../model/routing.js';
import type { Resolver } from '../../platform/dns.js';
import { classify, classifyReply, type Classification, type DeliveryFailure } from '../classify.js';
import { isOwnServer } from '../header-firewall.js';
import { downgrade8bitChunks } from './downgrade.js';
import { applyFirewallToBuffer, chunkStream, encodeDataChunks, fileHas8bit, has8bit, openMessage, prepareData, readMessageUpTo } from './message-stream.js';
import { orderAddresses, orderMxHosts, planMx, type RandomSource } from './mx.js';
import { SessionPool } from './pool.js';
import { SmtpSession, type OpenFailure, type SessionOptions, type SessionTarget, type TransactionResult } from './session.js';
import { configuredEndpoints, pruneSelfMx, pruneSelfSmartHosts, selfIdentity, selfNames, type SelfEndpoint, type SelfIdentity } from '../../policy/self-loop.js';
import { parseSmartHosts } from './smart-host.js';
import { tlsPolicyFor, type TlsPolicy } from './tls-policy.js';

export interface SmtpAgentDeps {
  readonly config: Config;
  readonly connector: SendConnector;
  readonly resolver: Resolver;
  readonly logger: Logger;
  readonly protocolLog: ProtocolLogSink;
  /** Client certificate to offer; default: the config.tls.certificates entry named by tlsCertificateName. */
  readonly tlsClient?: { readonly key: Buffer | string; readonly cert: Buffer | string };
  /** Port for DNS (MX) deliveries; default 25. Tests point it at their sink. */
  readonly port?: number;
  /** Random source for ordering equal-preference MX hosts; default Math.random. */
  readonly random?: RandomSource;
  /** Milliseconds; defaults: connect 30s, greeting 30s, socket min(connectionInactivityTimeout, 10m). */
  readonly timeouts?: Partial<SessionOptions['timeouts']>;
  /** Largest message converted to 7 bit; default DOWNGRADE_MAX_BYTES (tests lower it). */
  readonly downgradeMaxBytes?: number;
  /**
   * The endpoints this server listens on right now (the bound Receive connectors; wildcards
   * allowed), asked before each new connection to detect an MX or smart host that is us. The
   * enabled Receive connector bindings of `config` are always counted as well.
   */
  readonly selfEndpoints?: () => readonly SelfEndpoint[];
  /** Local interface addresses that a wildcard binding covers; default os.networkInterfaces(). */
  readonly interfaceAddresses?: () => readonly string[];
}

/** A host to try, with its addresses resolved lazily. */
interface HostEntry {
  readonly name: string;
  readonly port: number;
  /** Set for IP smart hosts and address literals. */
  readonly ip?: string;
  /** MX preference (0 for an implicit MX or a literal). */
  readonly preference?: number;
  /** Addresses, when they were looked up while planning. */
  readonly resolved?: AddressLookup;
}

type AddressLookup = { readonly ok: true; readonly ips: string[] } | { readonly ok: false; readonly permanent: boolean; readonly detail: string };

type RoutePlan =
  | { readonly kind: 'hosts'; readonly hosts: readonly HostEntry[] }
  | { readonly kind: 'error'; readonly failure: DeliveryFailure }
  /** The next hop is this server itself: every recipient gets `outcome`. */
  | { readonly kind: 'loop'; readonly outcome: RecipientOutcome; readonly connectionFailure: boolean };

/** os.networkInterfaces() is a system call: read it at most once a minute. */
let interfaceCache: { at: number; addresses: string[] } | undefined;
function localInterfaceAddresses(): string[] {
  const now = Date.now();
  if (interfaceCache && now - interfaceCache.at < 60_000) return interfaceCache.addresses;
  const addresses: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) addresses.push(i.address);
  interfaceCache = { at: now, addresses };
  return addresses;
}

const DEFAULT_TIMEOUTS = { connect: 30_000, greeting: 30_000, socket: 600_000 };

/** Messages up to this size are held in memory while sent; larger ones are streamed from the spool. */
export const INLINE_MAX_BYTES = 256 * 1024;

/**
 * The largest message converted to 7 bit for a hop without 8BITMIME. Conversion holds the message
 * in memory (about 2.4 times its size with the base64 output); anything larger fails with 5.6.3.
 */
export const DOWNGRADE_MAX_BYTES = 64 * 1024 * 1024;

/** transact() on a reused session that turned out dead before it said anything: try another. */
const STALE = Symbol('stale session');

function nonAscii(s: string | null | undefined): boolean {
  return !!s && /[^\x00-\x7f]/.test(s);
}

function outcomeOf(c: Classification, host: string | undefined): RecipientOutcome {
  const h = host !== undefined ? { host } : {};
  if (c.kind === 'failed') return { kind: 'failed', reply: c.reply, category: c.category, detail: c.detail, ...h };
  // Only a 2xx to the data makes "delivered"; anything else that looks like success is deferred.
  return { kind: 'deferred', reply: c.reply, category: c.kind === 'delivered' ? 'protocol' : c.category, detail: c.detail, ...h };
}

export function createSmtpDeliveryAgent(deps: SmtpAgentDeps): DeliveryAgent {
  return new SmtpDeliveryAgent(deps);
}

class SmtpDeliveryAgent implements DeliveryAgent {
  readonly usesContent = true;
  private readonly pool: SessionPool;
  private readonly random: RandomSource;
  private readonly timeouts: SessionOptions['timeouts'];
  private tlsMaterial?: Promise<SessionOptions['tlsOptions']>;
  private closed = false;

  constructor(private readonly deps: SmtpAgentDeps) {
    const ts = deps.config.transportService;
    const finite = (n: number, dflt: number) => (Number.isFinite(n) && n > 0 ? n : dflt);
    const perKey = finite(ts.maxPerDomainOutboundConnections, Number.MAX_SAFE_INTEGER);
    this.pool = new SessionPool({ maxIdlePerKey: Math.min(perKey, 20), maxTotal: finite(ts.maxOutboundConnections, Number.MAX_SAFE_INTEGER), maxPerKey: perKey });
    this.random = deps.random ?? Math.random;
    const inactivity = deps.connector.connectionInactivityTimeout;
    this.timeouts = {
      connect: deps.timeouts?.connect ?? DEFAULT_TIMEOUTS.connect,
      greeting: deps.timeouts?.greeting ?? DEFAULT_TIMEOUTS.greeting,
      socket: deps.timeouts?.socket ?? Math.min(Number.isFinite(inactivity) && inactivity > 0 ? inactivity : DEFAULT_TIMEOUTS.socket, DEFAULT_TIMEOUTS.socket),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pool.closeAll();
  }

  async deliver(batch: DeliveryBatch, signal: AbortSignal): Promise<DeliveryResult> {
    const { connector, logger } = this.deps;
    const recipients = batch.recipients;
    const all = (o: RecipientOutcome): DeliveryResult => ({ outcomes: new Map(recipients.map((r) => [r.address, o])) });
    const type = batch.key.deliveryType;
    if (type !== 'DnsConnectorDelivery' && type !== 'SmartHostConnectorDelivery') {
      return all({ kind: 'deferred', category: 'other', detail: `SMTP agent cannot deliver ${type}`, reply: makeReply(451, '4.4.0', `Wrong delivery agent for ${type}`) });
    }
    if (this.closed) return all({ kind: 'deferred', category: 'other', detail: 'agent closed', reply: makeReply(451, '4.3.2', 'Delivery agent shutting down') });
    if (batch.size > connector.maxMessageSize) {
      return all({ kind: 'failed', category: 'size', detail: `message ${batch.size} bytes > connector limit ${connector.maxMessageSize}`, reply: makeReply(552, '5.3.4', 'Message size exceeds fixed maximum message size') });
    }

    const key = nextHopKeyString(batch.key);
    const recipientDomain = type === 'DnsConnectorDelivery' ? batch.key.nextHopDomain : (domainOf(recipients[0]?.address ?? '') ?? batch.key.nextHopDomain);
    const policy = tlsPolicyFor(connector, recipientDomain);

    // 1. A pooled session to the same next hop (RSET first only after an aborted transaction),
    //    or a slot under the connection limits.
    for (;;) {
      if (this.closed) return all({ kind: 'deferred', category: 'other', detail: 'agent closed', reply: makeReply(451, '4.3.2', 'Delivery agent shutting down') });
      const got = await this.pool.acquire(key, signal);
      if (got.kind === 'aborted') return all({ kind: 'deferred', category: 'connect', detail: 'delivery aborted while waiting for a connection slot', reply: makeReply(451, '4.4.0', 'Delivery aborted') });
      if (got.kind === 'slot') break;
      const session = got.session;
      if (session.needsReset && !(await session.reset())) {
        session.close();
        continue;
      }
      const result = await this.transact(session, batch, key, signal);
      if (result !== STALE) return result;
      session.debug('pooled session was dead; trying another');
    }
    let slotHeld = true;
    const handOver = () => {
      slotHeld = false;
    };
    try {
      return await this.deliverFresh(batch, key, policy, signal, all, handOver);
    } finally {
      if (slotHeld) this.pool.releaseSlot(key);
    }
  }

  /** Tries the hosts in order on one connection slot; an opened session takes the slot over (handOver). */
  private async deliverFresh(
    batch: DeliveryBatch,
    key: string,
    policy: TlsPolicy,
    signal: AbortSignal,
    all: (o: RecipientOutcome) => DeliveryResult,
    handOver: () => void,
  ): Promise<DeliveryResult> {
    const { connector, logger } = this.deps;
    const type = batch.key.deliveryType;
    // 2. A fresh session: hosts in order, every address of a host before the next.
    const plan = await this.plan(batch);
    if (plan.kind === 'loop') {
      const o = all(plan.outcome);
      return plan.connectionFailure ? { ...o, connectionFailure: true } : o;
    }
    if (plan.kind === 'error') {
      const c = classify(plan.failure, { downgradeDnsFailures: connector.errorPolicies === 'DowngradeDnsFailures' });
      logger.info({ connector: connector.name, nextHop: batch.key.nextHopDomain, detail: c.detail }, 'SMTP route lookup failed');
      return all(outcomeOf(c, undefined));
    }
    let lastOpen: OpenFailure | undefined;
    let dnsPermanent = 0;
    let dnsTemporary: DeliveryFailure | undefined;
    let anyAddress = false;
    for (const host of plan.hosts) {
      if (signal.aborted) break;
      const addresses = await this.addressesOf(host);
      if (!addresses.ok) {
        if (addresses.permanent) dnsPermanent++;
        else dnsTemporary = { kind: 'dns', result: 'temporary', name: host.name, detail: addresses.detail };
        continue;
      }
      for (const ip of this.sameFamily(addresses.ips)) {
        if (signal.aborted) break;
        anyAddress = true;
        const target: SessionTarget = { host: host.name, ip, port: host.port };
        const opened = await this.open(target, policy, type === 'SmartHostConnectorDelivery', signal);
        if (opened instanceof SmtpSession) {
          // The session now holds the slot until it ends.
          handOver();
          this.pool.adopt(key, opened);
          const result = await this.transact(opened, batch, key, signal);
          // Only a reused session can be stale (a fresh one reports what happened): never here.
          if (result === STALE) return { ...all({ kind: 'deferred', category: 'connect', detail: 'connection lost', reply: makeReply(451, '4.4.0', 'Connection lost') }), connectionFailure: true };
          return result;
        }
        lastOpen = opened;
        logger.info({ connector: connector.name, host: host.name, ip, port: host.port, stage: opened.stage, failure: opened.failure }, 'SMTP session could not be opened');
      }
    }

    if (!anyAddress) {
      // Nothing to connect to: DNS decides.
      if (dnsTemporary || type === 'SmartHostConnectorDelivery' || dnsPermanent === 0) {
        const failure: DeliveryFailure = dnsTemporary ?? { kind: 'dns', result: 'temporary', name: batch.key.nextHopDomain, detail: 'no address for any host' };
        return { ...all(outcomeOf(classify(failure), undefined)), connectionFailure: true };
      }
      const c = classify({ kind: 'dns', result: 'nodata', name: batch.key.nextHopDomain, detail: 'no address records for any mail exchanger' }, { downgradeDnsFailures: connector.errorPolicies === 'DowngradeDnsFailures' });
      return all(outcomeOf(c, undefined));
    }
    const failure: DeliveryFailure = lastOpen?.failure ?? { kind: 'socket', code: 'ECONNABORTED', message: 'delivery aborted' };
    const c = classify(failure);
    // Whatever the last host said while we were setting up, the message itself was never refused.
    const deferred: RecipientOutcome = { kind: 'deferred', reply: c.kind !== 'deferred' ? makeReply(451, '4.4.0', `${c.reply.code} ${c.reply.enhanced ?? ''} ${c.reply.text}`.replace(/\s+/g, ' ')) : c.reply, category: lastOpen?.authFailure ? 'policy' : c.category, detail: c.detail };
    return { ...all(deferred), connectionFailure: true };
  }

  /** With a sourceIPAddress, only addresses of its family can be reached (when there are any). */
  private sameFamily(ips: readonly string[]): readonly string[] {
    const source = this.deps.connector.sourceIPAddress;
    const family = source && source !== '0.0.0.0' ? parseIp(source)?.family : undefined;
    if (!family) return ips;
    const same = ips.filter((ip) => parseIp(ip)?.family === family);
    return same.length > 0 ? same : ips;
  }

  /** Hosts for the batch's next hop (no addresses yet). */
  private async plan(batch: DeliveryBatch): Promise<RoutePlan> {
    const { connector, resolver } = this.deps;
    if (batch.key.deliveryType === 'DnsConnectorDelivery') {
      const port = this.deps.port ?? 25;
      const domain = batch.key.nextHopDomain;
      const literal = planMx(domain, undefined, this.random);
      if (literal.kind === 'literal') return this.withoutSelfMx(domain, 'literal', [{ name: literal.ip, ip: literal.ip, port, preference: 0 }]);
      const p = planMx(domain, await resolver.mx(domain), this.random);
      if (p.kind === 'error') return p;
      if (p.kind === 'literal') return this.withoutSelfMx(domain, 'literal', [{ name: p.ip, ip: p.ip, port, preference: 0 }]);
      return this.withoutSelfMx(domain, p.implicit ? 'implicit' : 'mx', p.hosts.map((h) => ({ name: h.name, port, preference: h.preference })));
    }
    const { hosts: smartHosts, errors } = parseSmartHosts(connector.smartHosts ?? [], connector.port);
    for (const e of errors) this.deps.logger.warn({ connector: connector.name }, `ignoring smart host ${e}`);
    const hosts: HostEntry[] = [];
    for (const sh of smartHosts) {
      if (sh.kind === 'ip') {
        hosts.push({ name: sh.ip, ip: sh.ip, port: sh.port });
        continue;
      }
      // Exchange resolves a smart host name by MX first, then A/AAAA.
      const mx = await resolver.mx(sh.name);
      if (mx.ok) {
        const ordered = orderMxHosts(mx.records, this.random);
        if (ordered.length > 0) {
          for (const h of ordered) hosts.push({ name: h.name, port: sh.port });
          continue;
        }
      }
      hosts.push({ name: sh.name, port: sh.port });
    }
    if (hosts.length === 0) return { kind: 'error', failure: { kind: 'dns', result: 'temporary', name: batch.key.nextHopDomain, detail: 'no usable smart host' } };
    return this.withoutSelfSmartHosts(hosts);
  }

  /** Who "we" are, for self-loop detection: config names, configured and bound endpoints, interfaces. */
  private self(): SelfIdentity {
    const { config } = this.deps;
    let bound: readonly SelfEndpoint[] = [];
    try {
      bound = this.deps.selfEndpoints?.() ?? [];
    } catch {
      // the listeners are being replaced (reload): the configured bindings still count
    }
    return selfIdentity({
      names: selfNames(config),
      endpoints: [...configuredEndpoints(config), ...bound],
      interfaceAddresses: this.deps.interfaceAddresses?.() ?? localInterfaceAddresses(),
    });
  }

  /** Looks up every host's addresses (in parallel) so the plan can tell which hosts are us. */
  private async resolveAll(hosts: readonly HostEntry[]): Promise<{ entry: HostEntry; name: string; port: number; preference: number; ips: readonly string[] }[]> {
    return Promise.all(
      hosts.map(async (h) => {
        const resolved = await this.addressesOf(h);
        const entry: HostEntry = { ...h, resolved };
        return { entry, name: h.name, port: h.port, preference: h.preference ?? 0, ips: resolved.ok ? resolved.ips : [] };
      }),
    );
  }

  /** RFC 5321 5.1: MX hosts at or below our own preference are dropped; nothing left is a loop (554 5.4.6). */
  private async withoutSelfMx(domain: string, source: 'mx' | 'implicit' | 'literal', hosts: readonly HostEntry[]): Promise<RoutePlan> {
    const { connector, logger } = this.deps;
    const decision = pruneSelfMx(await this.resolveAll(hosts), this.self());
    if (decision.kind === 'hosts') {
      if (decision.self) {
        logger.info(
          { connector: connector.name, domain, self: decision.self.name, preference: decision.self.preference, discarded: decision.discarded.map((h) => h.name) },
          'this server is an MX host of the domain: only more preferred MX hosts are tried',
        );
      }
      return { kind: 'hosts', hosts: decision.hosts.map((h) => h.entry) };
    }
    const me = decision.self;
    const what =
      source === 'literal'
        ? `the address literal [${me.name}]`
        : source === 'implicit'
          ? `the domain's own address (no MX records, implicit MX ${me.name})`
          : `its MX host ${me.name} (preference ${me.preference})`;
    const text = `Mail for ${domain} loops back to this server: ${what} points back to this server and no more preferred mail exchanger exists`;
    logger.warn({ connector: connector.name, domain, host: me.name, preference: me.preference, ips: me.ips }, 'mail loops back to this server (MX points back to us)');
    return { kind: 'loop', connectionFailure: false, outcome: { kind: 'failed', reply: makeReply(554, '5.4.6', text), category: 'loop', detail: `MX for ${domain} points back to this server (${me.name})` } };
  }

  /** Smart hosts that are this server are skipped; when all are, the batch waits (451 4.4.6) for the configuration to be fixed. */
  private async withoutSelfSmartHosts(hosts: readonly HostEntry[]): Promise<RoutePlan> {
    const { connector, logger } = this.deps;
    const decision = pruneSelfSmartHosts(await this.resolveAll(hosts), this.self());
    if (decision.kind === 'hosts') {
      if (decision.discarded.length > 0) {
        logger.warn({ connector: connector.name, skipped: decision.discarded.map((h) => `${h.name}:${h.port}`) }, 'skipping smart hosts that are this server itself');
      }
      return { kind: 'hosts', hosts: decision.hosts.map((h) => h.entry) };
    }
    const me = decision.self;
    const where = `${me.name}:${me.port}`;
    logger.error({ connector: connector.name, smartHost: where, ips: me.ips }, 'every smart host of the Send connector is this server itself (mail loop); fix smartHosts');
    return {
      kind: 'loop',
      connectionFailure: true,
      outcome: {
        kind: 'deferred',
        reply: makeReply(451, '4.4.6', `Smart host ${where} is this server itself (mail loop); check smartHosts of Send connector "${connector.name}"`),
        category: 'loop',
        detail: `smart host ${where} of Send connector "${connector.name}" points back to this server`,
      },
    };
  }

  private async addressesOf(host: HostEntry): Promise<AddressLookup> {
    if (host.resolved) return host.resolved;
    if (host.ip) return { ok: true, ips: [host.ip] };
    const [a, aaaa] = await Promise.all([this.deps.resolver.a(host.name), this.deps.resolver.aaaa(host.name)]);
    const ips = orderAddresses(a.ok ? a.records : [], aaaa.ok ? aaaa.records : []);
    if (ips.length > 0) return { ok: true, ips };
    const temporary = [a, aaaa].find((r) => !r.ok && r.kind === 'temporary');
    const detail = [a, aaaa].map((r) => (r.ok ? '' : r.detail)).filter(Boolean).join('; ');
    return { ok: false, permanent: !temporary, detail };
  }

  private async sessionOptions(policy: TlsPolicy, smartHost: boolean): Promise<SessionOptions | { error: string }> {
    const { connector, logger, protocolLog } = this.deps;
    this.tlsMaterial ??= this.loadTlsMaterial();
    let auth: SessionOptions['auth'];
    const mech = connector.smartHostAuthMechanism;
    if (smartHost && (mech === 'BasicAuth' || mech === 'BasicAuthRequireTLS')) {
      const cred = connector.authenticationCredential;
      if (!cred) return { error: `${mech} configured without authenticationCredential` };
      try {
        const pass = (await readFile(cred.passwordFile, 'utf8')).replace(/\r?\n$/, '');
        auth = { user: cred.username, pass, requireTls: mech === 'BasicAuthRequireTLS' };
      } catch (err) {
        return { error: `cannot read the password file of ${connector.name}: ${(err as NodeJS.ErrnoException).code ?? 'error'}` };
      }
    }
    return {
      connectorName: connector.name,
      fqdn: connector.fqdn,
      ...(connector.sourceIPAddress && connector.sourceIPAddress !== '0.0.0.0' ? { localAddress: connector.sourceIPAddress } : {}),
      tls: policy,
      tlsOptions: await this.tlsMaterial,
      ...(auth ? { auth } : {}),
      ...(connector.protocolLoggingLevel === 'Verbose' ? { protocolLog } : {}),
      timeouts: this.timeouts,
      logger,
      ...(connector.forceHELO ? { forceHelo: true } : {}),
    };
  }

  private async loadTlsMaterial(): Promise<SessionOptions['tlsOptions']> {
    const { config, connector, logger, tlsClient } = this.deps;
    const out: { ca?: Buffer; key?: Buffer; cert?: Buffer; minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' } = { minVersion: config.tls.minVersion };
    try {
      if (config.tls.caFile) out.ca = await readFile(config.tls.caFile);
      if (tlsClient) {
        out.key = Buffer.from(tlsClient.key);
        out.cert = Buffer.from(tlsClient.cert);
      } else if (connector.tlsCertificateName) {
        const entry = config.tls.certificates.find((c) => c.name === connector.tlsCertificateName);
        if (entry) {
          out.key = await readFile(entry.keyFile);
          out.cert = await readFile(entry.certFile);
        } else {
          logger.warn({ connector: connector.name, tlsCertificateName: connector.tlsCertificateName }, 'tlsCertificateName names no entry of tls.certificates; no client certificate offered');
        }
      }
    } catch (err) {
      logger.error({ connector: connector.name, code: (err as NodeJS.ErrnoException).code }, 'cannot read TLS files for the Send connector');
    }
    return out;
  }

  /** Opens a session; under opportunistic TLS a failed handshake is retried once in plaintext. */
  private async open(target: SessionTarget, policy: TlsPolicy, smartHost: boolean, signal: AbortSignal): Promise<SmtpSession | OpenFailure> {
    const opts = await this.sessionOptions(policy, smartHost);
    if ('error' in opts) {
      this.deps.logger.error({ connector: this.deps.connector.name }, opts.error);
      return { failure: { kind: 'socket', code: 'EACCES', message: opts.error, stage: 'auth' }, stage: 'auth', tlsFailure: false, authFailure: true, retryPlaintext: false };
    }
    const first = await SmtpSession.open(target, opts, signal);
    if (first instanceof SmtpSession || !first.retryPlaintext || signal.aborted) return first;
    this.deps.logger.info({ host: target.host, ip: target.ip }, 'TLS handshake failed; retrying without STARTTLS (opportunistic TLS)');
    return SmtpSession.open(target, { ...opts, tls: { mode: 'plaintext', verify: 'none' } }, signal);
  }

  /**
   * Runs the batch over an open session and gives the session back to the pool (or ends it).
   * STALE: a reused session was dead before it answered; it is closed and nothing was sent.
   */
  private async transact(session: SmtpSession, batch: DeliveryBatch, key: string, signal: AbortSignal): Promise<DeliveryResult | typeof STALE> {
    const { connector, config } = this.deps;
    const env = batch.envelope;
    const recipients = batch.recipients;
    const host = session.target.host;
    const sessionInfo = { host, ip: session.target.ip, ...(session.tls ? { tls: session.tls } : {}) };
    const ext = session.extensions;
    const allFailed = (code: number, enhanced: string, text: string, detail: string): DeliveryResult => {
      this.pool.put(key, session, connector.smtpMaxMessagesPerConnection, this.timeouts.socket);
      const o: RecipientOutcome = { kind: 'failed', reply: makeReply(code, enhanced, text), category: 'protocol', detail, host };
      return { outcomes: new Map(recipients.map((r) => [r.address, o])), session: sessionInfo };
    };

    // The spooled file must be readable before we commit the peer to a DATA phase. A small one is
    // read whole right here, synchronously on purpose: the spool file was just written and sits in
    // the page cache, and four plain syscalls cost a fifth of the CPU of fs/promises' readFile with
    // its thread-pool round trips (measured: ~25 µs against ~125 µs for 2 KB).
    let raw: Buffer | undefined;
    try {
      if (batch.content) raw = batch.content;
      else if (batch.size <= INLINE_MAX_BYTES) raw = readFileSync(batch.bodyPath);
      else await access(batch.bodyPath, constants.R_OK);
    } catch (err) {
      this.pool.put(key, session, connector.smtpMaxMessagesPerConnection, this.timeouts.socket);
      const c = classify({ kind: 'socket', code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: `cannot read ${batch.bodyPath}` });
      return { outcomes: new Map(recipients.map((r) => [r.address, outcomeOf(c, undefined)])), session: sessionInfo };
    }

    // SMTPUTF8 / 8BITMIME: what this hop can take.
    const addressesNeedUtf8 = nonAscii(env.mailFrom) || recipients.some((r) => nonAscii(r.address));
    let is8bit: boolean | undefined;
    const content8bit = async () => (is8bit ??= raw ? has8bit(raw) : await fileHas8bit(batch.bodyPath).catch(() => true));
    if ((env.smtputf8 || addressesNeedUtf8) && !ext.has('SMTPUTF8') && (addressesNeedUtf8 || (await content8bit()))) {
      return allFailed(550, '5.6.7', 'SMTPUTF8 is required but the remote server does not offer it', `${host} does not offer SMTPUTF8`);
    }
    const own = isOwnServer(host, session.target.ip, config.organization.servers) || connector.smartHostAuthMechanism === 'ExchangeServer';
    const firewall = { sendOrganizationHeaders: own };

    // RFC 6152 downgrade: an 8-bit message for a hop without 8BITMIME is re-encoded to 7 bit when
    // its MIME structure allows it; otherwise it bounces, never goes as is. The content decides,
    // not the BODY= label: a message declared 7BIT that carries 8-bit bytes is treated the same way.
    // A streamed (large) message is read into memory only here, for this rare case.
    let converted: { readonly chunks: readonly Buffer[]; readonly length: number } | undefined;
    if (!ext.has('8BITMIME') && (await content8bit())) {
      const limit = Math.min(this.deps.downgradeMaxBytes ?? DOWNGRADE_MAX_BYTES, connector.maxMessageSize);
      let source = raw;
      if (!source) {
        try {
          source = await readMessageUpTo(batch.bodyPath, limit);
        } catch (err) {
          this.pool.put(key, session, connector.smtpMaxMessagesPerConnection, this.timeouts.socket);
          const c = classify({ kind: 'socket', code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: `cannot read ${batch.bodyPath}` });
          return { outcomes: new Map(recipients.map((r) => [r.address, outcomeOf(c, undefined)])), session: sessionInfo };
        }
      }
      // The header firewall first: the converter keeps the top-level header fields as they are.
      const conversion = source ? downgrade8bitChunks(applyFirewallToBuffer(source, firewall).message) : { ok: false as const, reason: `message larger than ${limit} bytes is not converted` };
      if (!conversion.ok) {
        return allFailed(554, '5.6.3', 'Conversion to 7 bit required but not supported; the remote server does not offer 8BITMIME', `${host} does not offer 8BITMIME; ${conversion.reason}`);
      }
      converted = conversion;
      raw = undefined;
      this.deps.logger.debug({ host, messageId: batch.messageId, size: batch.size, convertedSize: conversion.length }, 'converted 8-bit message to 7 bit for a next hop without 8BITMIME');
    }

    // A small converted message is written in one go like any small one; a larger one is streamed
    // from its chunks (nodemailer then normalises line ends and dot-stuffs, as for a spooled file).
    const body = converted
      ? converted.length <= INLINE_MAX_BYTES
        ? { data: encodeDataChunks(Buffer.concat(converted.chunks, converted.length)) }
        : { message: chunkStream(converted.chunks) }
      : raw
        ? { data: prepareData(raw, firewall).data }
        : { message: openMessage(batch.bodyPath, firewall).stream };
    const result: TransactionResult = await session.send(
      {
        mailFrom: env.mailFrom,
        recipients,
        size: converted ? converted.length : batch.size,
        body8bit: !converted && env.body !== '7BIT' && ext.has('8BITMIME'),
        smtputf8: env.smtputf8 && ext.has('SMTPUTF8'),
        ...(env.ret ? { ret: env.ret } : {}),
        ...(env.envid ? { envid: env.envid } : {}),
        ...body,
        recordId: batch.messageId,
        ...(batch.internetMessageId ? { internetMessageId: batch.internetMessageId } : {}),
      },
      signal,
    );

    if (result.staleSession) {
      session.close();
      return STALE;
    }

    const dsn = ext.has('DSN');
    const outcomes = new Map<string, RecipientOutcome>();
    const fallback = result.failure ? classify(result.failure.failure) : undefined;
    for (const r of recipients) outcomes.set(r.address, this.outcomeFor(r, result, fallback, host, dsn));

    const cleanReplyFailure = !result.failure || (result.failure.failure.kind === 'reply' && !result.failure.connectionLost);
    if (cleanReplyFailure && session.alive) this.pool.put(key, session, connector.smtpMaxMessagesPerConnection, this.timeouts.socket);
    else session.close();

    return {
      outcomes,
      session: sessionInfo,
      ...(result.failure?.connectionLost && result.accepted.size === 0 ? { connectionFailure: true } : {}),
    };
  }

  private outcomeFor(r: Recipient, result: TransactionResult, fallback: Classification | undefined, host: string, dsn: boolean): RecipientOutcome {
    const final = result.accepted.get(r.address);
    if (final !== undefined) {
      const reply = parseReply(final) ?? makeReply(250, '2.0.0', final);
      const relayed = !dsn && (r.notify ?? []).includes('SUCCESS');
      if (Math.floor(reply.code / 100) === 2) return { kind: 'delivered', reply, host, ...(relayed ? { relayed: true } : {}) };
      return outcomeOf(classifyReply(final, 'message'), host);
    }
    const rcptReply = result.rejected.get(r.address);
    if (rcptReply !== undefined) return outcomeOf(classifyReply(rcptReply, 'rcpt'), host);
    if (fallback) return outcomeOf(fallback, host);
    return { kind: 'deferred', category: 'other', detail: 'no reply for this recipient', reply: makeReply(451, '4.4.0', 'No reply for this recipient'), host };
  }
}
