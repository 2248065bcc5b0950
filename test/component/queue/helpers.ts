/** Shared pieces for the queue component tests: a config on a temp spool, a recording delivery agent, polling. */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { parseSegment } from '../../../src/queue/content-journal.js';
import { configSchema } from '../../../src/config/schema.js';
import { applyDefaults, type Config } from '../../../src/config/defaults.js';
import type { DeliveryAgent, DeliveryBatch, DeliveryResult, RecipientOutcome } from '../../../src/model/outcome.js';
import { nextHopKeyString, type NextHopKey } from '../../../src/model/routing.js';
import type { TrackingEvent, TrackingSink } from '../../../src/model/tracking.js';
import type { IntakeRequest } from '../../../src/model/intake.js';
import type { Recipient } from '../../../src/model/envelope.js';
import { silentLogger } from '../../../src/logging/logger.js';

export const logger = silentLogger();

/**
 * The spooled content of a message as it is on disk: its own file, or else its entry in the content
 * journal (read with the journal's own parser); undefined when neither holds it.
 */
export async function spooledContent(dataDir: string, id: string): Promise<Buffer | undefined> {
  const root = join(dataDir, 'queue', 'v1');
  const file = await readFile(join(root, 'messages', `${id}.eml`)).catch(() => undefined);
  if (file) return file;
  for (const name of (await readdir(join(root, 'journal')).catch(() => [] as string[])).sort()) {
    const found = parseSegment(await readFile(join(root, 'journal', name))).entries.get(id);
    if (found) return found;
  }
  return undefined;
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'mailyard-queue-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function makeConfig(dataDir: string, extra: Record<string, unknown> = {}): Config {
  const { transportService, ...rest } = extra as { transportService?: Record<string, unknown> };
  return applyDefaults(
    configSchema.parse({
      server: { name: 'EX01', fqdn: 'mx.contoso.com', dataDir, logDir: join(dataDir, 'logs') },
      acceptedDomains: [{ domainName: 'contoso.com', domainType: 'Authoritative', default: true }],
      sendConnectors: [{ name: 'To Internet', addressSpaces: ['*'] }],
      transportService: { ...(transportService ?? {}) },
      ...rest,
    }),
    '<test>',
    [],
  );
}

export interface RecordedBatch {
  readonly key: NextHopKey;
  readonly messageId: string;
  readonly mailFrom: string | null;
  readonly recipients: readonly string[];
  readonly body: string;
}

export type Decide = (rcpt: string, batch: DeliveryBatch) => RecipientOutcome | Promise<RecipientOutcome>;

export const OK: RecipientOutcome = { kind: 'delivered', reply: { code: 250, enhanced: '2.0.0', text: 'OK' }, host: 'sink.example' };
export const TEMP: RecipientOutcome = { kind: 'deferred', reply: { code: 451, enhanced: '4.3.0', text: 'try again later' }, category: 'recipient', detail: 'remote 451', host: 'sink.example' };
export const PERM: RecipientOutcome = { kind: 'failed', reply: { code: 550, enhanced: '5.1.1', text: 'User unknown' }, category: 'recipient', detail: 'remote 550', host: 'sink.example' };

/** The peer of the queue: records every batch (reading the spooled file) and answers as told. */
export class RecordingAgent {
  readonly batches: RecordedBatch[] = [];
  active = new Map<string, number>();
  maxActive = new Map<string, number>();
  connectionFailure = false;

  constructor(public decide: Decide = () => OK) {}

  factory = (key: NextHopKey): DeliveryAgent => ({
    deliver: async (batch: DeliveryBatch): Promise<DeliveryResult> => {
      const k = nextHopKeyString(key);
      this.active.set(k, (this.active.get(k) ?? 0) + 1);
      this.maxActive.set(k, Math.max(this.maxActive.get(k) ?? 0, this.active.get(k)!));
      try {
        const body = await readFile(batch.bodyPath, 'latin1');
        this.batches.push({ key, messageId: batch.messageId, mailFrom: batch.envelope.mailFrom, recipients: batch.recipients.map((r) => r.address), body });
        const outcomes = new Map<string, RecipientOutcome>();
        for (const r of batch.recipients) outcomes.set(r.address, await this.decide(r.address, batch));
        return { outcomes, ...(this.connectionFailure ? { connectionFailure: true } : {}) };
      } finally {
        this.active.set(k, this.active.get(k)! - 1);
      }
    },
  });

  deliveredTo(addr: string): RecordedBatch[] {
    return this.batches.filter((b) => b.recipients.includes(addr));
  }
}

export class CaptureTracking implements TrackingSink {
  readonly events: TrackingEvent[] = [];
  emit(e: TrackingEvent): void {
    this.events.push(e);
  }
  ids(): string[] {
    return this.events.map((e) => e.eventId);
  }
}

export function request(mailFrom: string | null, rcpts: readonly (string | Recipient)[], extra: Partial<IntakeRequest> = {}): IntakeRequest {
  return {
    envelope: { mailFrom, recipients: rcpts.map((r) => (typeof r === 'string' ? { address: r } : r)), body: '8BITMIME', smtputf8: false },
    source: { kind: 'smtp', connector: 'Default Frontend EX01', client: { address: '127.0.0.1', port: 40000 } },
    receivedAt: new Date(),
    ...extra,
  };
}

export function message(subject = 'Hello', body = 'Line one\nLine two\n'): Buffer {
  return Buffer.from(`From: Ann <ann@fabrikam.example>\nTo: bob@contoso.com\nSubject: ${subject}\nMessage-ID: <m1@fabrikam.example>\n\n${body}`);
}

/** Polls cond until it holds or the deadline passes. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Config for a real daemon that relays everything from an anonymous connector on 127.0.0.1 to a
 * smart host (the crash tests' sink), with one-second retries. `acceptedDomain` adds an
 * Authoritative domain; `connectorExtra` adds lines to the Receive connector.
 */
export function relayDaemonConfig(o: { dir: string; name: string; fqdn: string; smtpPort: number; sinkPort: number; adminPort?: number; acceptedDomain?: string; connectorExtra?: readonly string[] }): string {
  return `server:
  name: ${o.name}
  fqdn: ${o.fqdn}
  dataDir: ${o.dir}/spool
  logDir: ${o.dir}/log
  logLevel: warn
  admin: { listen: "127.0.0.1:${o.adminPort ?? 0}" }
${o.acceptedDomain ? `acceptedDomains:\n  - { domainName: ${o.acceptedDomain}, domainType: Authoritative, default: true }\n` : ''}receiveConnectors:
  - name: Relay
    bindings: ["127.0.0.1:${o.smtpPort}"]
    permissionGroups: [AnonymousUsers]
    authMechanism: [None]
    permissions: [SMTPAcceptAnyRecipient]
${(o.connectorExtra ?? []).map((l) => `    ${l}\n`).join('')}sendConnectors:
  - name: Smart host
    addressSpaces: ["*"]
    smartHosts: ["127.0.0.1:${o.sinkPort}"]
transportService:
  queueGlitchRetryInterval: 1s
  transientFailureRetryInterval: 1s
  messageRetryInterval: 1s
  outboundConnectionFailureRetryInterval: 1s
`;
}

/** The Message-ID of a message as it arrived at a sink. */
export function messageIdOf(data: Buffer): string | undefined {
  return /Message-ID: (<[^>]+>)/i.exec(data.toString('latin1'))?.[1];
}
