/**
 * The delivery thread: runs the Send connectors' SMTP agents (agent.ts) on a worker thread of its
 * own, so that outbound SMTP (nodemailer's parsing, the socket writes, TLS) uses the second core
 * while the main thread receives and queues. thread.ts is the main thread's side; this file is the
 * worker's. Each configuration (start, every reload) is a numbered generation with its own
 * agents, as AgentRegistry keeps one set per configuration on the main thread; a retired
 * generation's agents close their pooled connections. Send protocol logs are written here; the
 * operational log lines go to the main thread's logger.
 */
import { parentPort } from 'node:worker_threads';
import pino from 'pino';
import type { Config } from '../../config/index.js';
import type { DeliveryAgent, DeliveryBatch } from '../../model/outcome.js';
import type { SelfEndpoint } from '../../policy/self-loop.js';
import { createProtocolLog, type ProtocolLogWriter } from '../../logging/protocol-log.js';
import { createResolverFromConfig } from '../../platform/dns.js';
import { createSmtpDeliveryAgent } from './agent.js';
import type { ToThread, FromThread } from './thread.js';

const port = parentPort!;
const post = (m: FromThread) => port.postMessage(m);

interface Generation {
  readonly config: Config;
  readonly resolver: ReturnType<typeof createResolverFromConfig>;
  readonly agents: Map<string, DeliveryAgent>;
}

const generations = new Map<number, Generation>();
let latest = 0;
let endpoints: readonly SelfEndpoint[] = [];
let protocolLog: ProtocolLogWriter | undefined;
let logger: pino.Logger | undefined;
const controllers = new Map<number, AbortController>();

function generation(gen: number): Generation {
  return generations.get(gen) ?? generations.get(latest)!;
}

function agentFor(gen: number, connector: string): DeliveryAgent {
  const g = generation(gen);
  let agent = g.agents.get(connector);
  if (!agent) {
    const c = g.config.sendConnectors.find((x) => x.name === connector);
    if (!c) throw new Error(`no Send connector "${connector}" in the current configuration`);
    agent = createSmtpDeliveryAgent({ config: g.config, connector: c, resolver: g.resolver, logger: logger!, protocolLog: protocolLog!, selfEndpoints: () => endpoints });
    g.agents.set(connector, agent);
  }
  return agent;
}

async function retire(gen: number): Promise<void> {
  const g = generations.get(gen);
  if (!g || gen === latest) return;
  generations.delete(gen);
  await Promise.allSettled([...g.agents.values()].map((a) => a.close?.()));
}

async function deliver(m: Extract<ToThread, { op: 'deliver' }>): Promise<void> {
  const controller = new AbortController();
  controllers.set(m.id, controller);
  try {
    const { content, ...rest } = m.batch;
    const batch: DeliveryBatch = { ...rest, ...(content ? { content: Buffer.from(content.buffer, content.byteOffset, content.byteLength) } : {}) };
    const result = await agentFor(m.gen, m.connector).deliver(batch, controller.signal);
    post({ op: 'result', id: m.id, result });
  } catch (err) {
    post({ op: 'failed', id: m.id, message: (err as Error)?.message ?? String(err) });
  } finally {
    controllers.delete(m.id);
  }
}

port.on('message', (m: ToThread) => {
  switch (m.op) {
    case 'config':
      if (!logger) {
        // Lines go to the main thread's logger, which adds its own time, redaction and destination.
        logger = pino({ level: m.config.server.logLevel, base: undefined, timestamp: false, formatters: { level: (label) => ({ level: label }) } }, { write: (line: string) => post({ op: 'log', line }) });
        protocolLog = createProtocolLog(m.config.server.logDir, m.config.transportService, logger);
      }
      generations.set(m.gen, { config: m.config, resolver: createResolverFromConfig(m.config), agents: new Map() });
      latest = Math.max(latest, m.gen);
      return;
    case 'self':
      endpoints = m.endpoints;
      return;
    case 'deliver':
      void deliver(m);
      return;
    case 'abort':
      controllers.get(m.id)?.abort();
      return;
    case 'retire':
      void retire(m.gen);
      return;
    case 'close':
      void (async () => {
        for (const c of controllers.values()) c.abort();
        await Promise.allSettled([...generations.values()].flatMap((g) => [...g.agents.values()].map((a) => a.close?.())));
        await protocolLog?.close();
        post({ op: 'closed' });
      })();
      return;
  }
});
