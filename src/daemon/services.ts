/**
 * Builds and wires the running services from one Config snapshot:
 *
 *   ReceiveService (SMTP listeners) ─┐
 *   PickupService (Pickup/Replay)  ──┼─> Transport.intake (spool, fsync) -> categorizer -> queues
 *                                    │        └─> delivery agents by NextHopKey (AgentRegistry)
 *   Admin API (loopback) ────────────┘            SMTP send connectors, mailbox, drop dir, HTTP/LMTP
 *
 * Start-up order: logs, spool (loads the queue), delivery agents, listeners, pickup, admin. If a
 * step fails, everything started before it is stopped again and the error propagates, so no
 * half-started process is left behind. reload() swaps the config snapshot in every service;
 * stop() stops taking new work first (listeners, pickup), then drains the queue.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging/logger.js';
import type { DeliveryAgent, NextHopKey, TrackingSink } from '../model/index.js';
import { nullTrackingSink } from '../model/index.js';
import { createProtocolLog, type ProtocolLogWriter } from '../logging/protocol-log.js';
import { MessageTrackingLog, teeTracking, trackingLogOptions } from '../logging/tracking.js';
import { Metrics } from '../metrics/registry.js';
import { Transport } from '../queue/manager.js';
import { ResourceMonitor } from '../queue/resource-monitor.js';
import { PRESSURE_RANK } from '../policy/back-pressure.js';
import { ReceiveService, type ReceiveTls } from '../receive/index.js';
import { PickupService } from '../pickup/pickup.js';
import { startAdminServer, type AdminServer } from '../admin/server.js';
import { createResolverFromConfig, type Resolver } from '../platform/dns.js';
import { createSmtpDeliveryAgent } from '../delivery/smtp/agent.js';
import type { SelfEndpoint } from '../policy/self-loop.js';
import { createMailboxAgent, recipientExists } from '../delivery/mailbox.js';
import { createDropDirectoryAgent } from '../delivery/drop-directory.js';
import { createDeliveryAgentConnectorAgent } from '../delivery/http.js';
import { UsersStore, readUsers } from '../users/index.js';

export interface Services {
  listening(): string[];
  reload(config: Config): Promise<void>;
  stop(graceMs: number): Promise<void>;
}

/** One delivery agent per connector (and one for mailboxes), built lazily for the current config. */
class AgentRegistry {
  readonly #agents = new Map<string, DeliveryAgent>();
  constructor(
    private readonly config: Config,
    private readonly deps: { logger: Logger; protocolLog: ProtocolLogWriter; resolver: Resolver; selfEndpoints?: () => readonly SelfEndpoint[] },
  ) {}

  get(key: NextHopKey): DeliveryAgent {
    const id = `${key.deliveryType}:${key.connector ?? ''}`;
    let agent = this.#agents.get(id);
    if (!agent) {
      agent = this.#build(key);
      this.#agents.set(id, agent);
    }
    return agent;
  }

  #build(key: NextHopKey): DeliveryAgent {
    const { logger, protocolLog, resolver, selfEndpoints } = this.deps;
    const config = this.config;
    switch (key.deliveryType) {
      case 'DnsConnectorDelivery':
      case 'SmartHostConnectorDelivery': {
        const connector = config.sendConnectors.find((c) => c.name === key.connector);
        if (!connector) return missingConnector(key);
        return createSmtpDeliveryAgent({ config, connector, resolver, logger, protocolLog, ...(selfEndpoints ? { selfEndpoints } : {}) });
      }
      case 'SmtpDeliveryToMailbox':
        return createMailboxAgent({ config, logger, protocolLog });
      case 'NonSmtpGatewayDelivery': {
        const connector = config.foreignConnectors.find((c) => c.name === key.connector);
        if (!connector) return missingConnector(key);
        return createDropDirectoryAgent({ connector, logger, fsync: config.transportService.fsyncEnabled });
      }
      case 'DeliveryAgent': {
        const connector = config.deliveryAgentConnectors.find((c) => c.name === key.connector);
        if (!connector) return missingConnector(key);
        return createDeliveryAgentConnectorAgent({ connector, config, logger, protocolLog });
      }
      case 'Unreachable':
        return missingConnector(key);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#agents.values()].map((a) => a.close?.()));
    this.#agents.clear();
  }
}

/** A connector that vanished between routing and delivery (a reload): defer, the categorizer re-routes. */
function missingConnector(key: NextHopKey): DeliveryAgent {
  return {
    async deliver(batch) {
      const outcomes = new Map(
        batch.recipients.map((r) => [
          r.address,
          { kind: 'deferred' as const, category: 'other' as const, detail: `no connector "${key.connector ?? key.deliveryType}" in the current configuration` },
        ]),
      );
      return { outcomes };
    },
  };
}

/** The users file as the receive side needs it: login verification and the set of addresses. */
class Users {
  #store: UsersStore | undefined;
  #addresses: { at: number; set: Set<string> } | undefined;
  constructor(private file: string | undefined) {
    this.#store = file ? new UsersStore(file) : undefined;
  }
  setFile(file: string | undefined): void {
    if (file === this.file) return;
    this.file = file;
    this.#store = file ? new UsersStore(file) : undefined;
    this.#addresses = undefined;
  }
  verify = async (login: string, password: string): Promise<boolean> => (this.#store ? this.#store.verify(login, password) : false);
  async addresses(): Promise<Set<string>> {
    if (!this.file) return new Set();
    const now = Date.now();
    if (this.#addresses && now - this.#addresses.at < 5000) return this.#addresses.set;
    // A missing file reads as no users; an unreadable one throws (the caller answers 451).
    const set = new Set((await readUsers(this.file)).map((u) => u.address));
    this.#addresses = { at: now, set };
    return set;
  }
}

/** The receive side's certificates: tls.certFile/keyFile, tls.caFile, and the named tls.certificates. */
async function loadTls(config: Config): Promise<ReceiveTls | undefined> {
  const certificates = await Promise.all(
    config.tls.certificates.map(async (c) => ({ name: c.name, cert: await readFile(c.certFile), key: await readFile(c.keyFile) })),
  );
  const ca = config.tls.caFile ? await readFile(config.tls.caFile) : undefined;
  const main =
    config.tls.certFile && config.tls.keyFile
      ? { cert: await readFile(config.tls.certFile), key: await readFile(config.tls.keyFile) }
      : certificates[0];
  if (!main) return undefined;
  return { key: main.key, cert: main.cert, ...(ca ? { ca } : {}), ...(certificates.length ? { certificates } : {}) };
}

export async function buildServices(initial: Config, logger: Logger): Promise<Services> {
  let config = initial;
  const cleanups: (() => Promise<void>)[] = [];
  const unwind = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const protocolLog = createProtocolLog(config.server.logDir, config.transportService, logger);
    cleanups.push(() => protocolLog.close());
    const trackingLog = new MessageTrackingLog(trackingLogOptions(config, logger));
    cleanups.push(async () => trackingLog.close());
    // Metrics read the live services at scrape time; `live` is filled in once they exist.
    const live = { transport: undefined as Transport | undefined, receive: undefined as ReceiveService | undefined, monitor: undefined as ResourceMonitor | undefined };
    const metrics = new Metrics({
      queuedMessages: () => live.transport?.stats().messages ?? 0,
      deliveryQueues: () => live.transport?.stats().queues ?? 0,
      unreachableMessages: () => live.transport?.stats().unreachable ?? 0,
      poisonMessages: () => live.transport?.stats().poison ?? 0,
      activeDeliveries: () => live.transport?.stats().active ?? 0,
      smtpSessions: () => live.receive?.sessionCount ?? 0,
      backPressureLevel: () => PRESSURE_RANK[live.monitor?.level ?? 'Normal'],
    });
    const tracking: TrackingSink = teeTracking(config.transportService.messageTrackingLogEnabled ? trackingLog : nullTrackingSink, metrics.tracking);

    // The SMTP agents ask for the endpoints actually bound, to detect an MX or smart host that is us.
    const selfEndpoints = (): readonly SelfEndpoint[] => live.receive?.address() ?? [];
    let agents = new AgentRegistry(config, { logger, protocolLog, resolver: createResolverFromConfig(config), selfEndpoints });
    const transport = new Transport({ config, logger, tracking, agents: (key) => agents.get(key) });
    await transport.start();
    live.transport = transport;
    cleanups.push(async () => {
      await transport.stop(0);
      await agents.close();
    });

    // Back pressure watches the spool's file system and the queue; the first check runs before
    // any listener opens, so a server started on a full disk refuses mail from its first session.
    const monitor = new ResourceMonitor({
      dir: join(config.server.dataDir, 'queue'),
      settings: config.transportService.backPressure,
      queuedMessages: () => transport.stats().messages,
      logger,
    });
    await monitor.start();
    live.monitor = monitor;
    cleanups.push(async () => monitor.stop());
    const pressure = () => monitor.level;

    const users = new Users(config.users.file);
    const validation = () => config.mailboxDelivery.recipientValidation;
    const receive = new ReceiveService({
      config,
      intake: transport.intake,
      logger,
      protocolLog,
      tls: await loadTls(config),
      users: users.verify,
      pressure,
      recipientExists: async (address) => {
        if (!validation()) return true;
        try {
          return recipientExists(config, await users.addresses(), address);
        } catch {
          return undefined; // cannot tell now: 451, never 550
        }
      },
    });
    await receive.start();
    live.receive = receive;
    cleanups.push(() => receive.stop(0));

    const pickup = new PickupService({ config, intake: transport.intake, logger, tracking, isQueued: (key) => transport.hasDedupeKey(key), pressure });
    await pickup.start();
    cleanups.push(async () => pickup.stop());

    const admin: AdminServer = await startAdminServer({
      listen: config.server.admin.listen,
      allowNonLoopback: config.server.admin.allowNonLoopback,
      queue: transport,
      logger,
      extraRoutes: [
        async (req, res, url) => {
          if (req.method !== 'GET' || url.pathname !== '/backpressure') return false;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(monitor.state));
          return true;
        },
        async (req, res, url) => {
          if (req.method !== 'GET' || url.pathname !== '/metrics') return false;
          const m = await metrics.text();
          res.writeHead(200, { 'content-type': m.contentType });
          res.end(m.body);
          return true;
        },
      ],
    });
    cleanups.push(() => admin.close());

    return {
      listening: () => [...receive.address().map((b) => `${b.address}:${b.port}`), `admin ${admin.address}:${admin.port}`],
      async reload(next: Config) {
        const tls = await loadTls(next);
        const oldAgents = agents;
        agents = new AgentRegistry(next, { logger, protocolLog, resolver: createResolverFromConfig(next), selfEndpoints });
        config = next;
        users.setFile(next.users.file);
        await receive.reload(next, tls ?? null);
        transport.reload(next);
        await monitor.reload(next.transportService.backPressure);
        await pickup.reload(next);
        // Connections pooled by the old agents finish their current deliveries, then close.
        setTimeout(() => void oldAgents.close(), 60_000).unref();
      },
      async stop(graceMs: number) {
        // One deadline for the whole shutdown (systemd's TimeoutStopSec is sized for it):
        // sessions in flight first, then deliveries in flight get what is left.
        const deadline = Date.now() + graceMs;
        await receive.stop(graceMs);
        await pickup.stop();
        await transport.stop(Math.max(0, deadline - Date.now()));
        monitor.stop();
        await agents.close();
        await admin.close();
        trackingLog.close();
        await protocolLog.close();
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
