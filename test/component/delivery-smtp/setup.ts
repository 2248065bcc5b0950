/** Shared scaffolding for the SMTP delivery component tests: config, batches, log capture. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import pino from 'pino';
import { applyDefaults, type Config, type SendConnector } from '../../../src/config/defaults.js';
import { configSchema } from '../../../src/config/schema.js';
import type { Envelope, Recipient } from '../../../src/model/envelope.js';
import { newMessageId } from '../../../src/model/ids.js';
import type { DeliveryBatch } from '../../../src/model/outcome.js';
import type { ProtocolEvent, ProtocolLogService, ProtocolLogSink } from '../../../src/model/protocol.js';
import type { DeliveryType } from '../../../src/model/routing.js';
import { startSmtpSink, type SinkOptions, type SmtpSink } from '../../helpers/smtp-sink.js';

export const silent = pino({ level: 'silent' });

export function makeConfig(sendConnector: Record<string, unknown>, extra: Record<string, unknown> = {}): { config: Config; connector: SendConnector } {
  const parsed = configSchema.parse({
    server: { name: 'EX01', fqdn: 'mail.contoso.test', dataDir: '/tmp/unused', logDir: '/tmp/unused' },
    sendConnectors: [{ name: 'To Internet', addressSpaces: ['*'], ...sendConnector }],
    ...extra,
  });
  const config = applyDefaults(parsed, '<inline>');
  return { config, connector: config.sendConnectors[0]! };
}

export class MemoryProtocolLog implements ProtocolLogSink {
  readonly events: { service: ProtocolLogService; event: ProtocolEvent }[] = [];
  write(service: ProtocolLogService, event: ProtocolEvent): void {
    this.events.push({ service, event });
  }
  lines(): string[] {
    return this.events.map((e) => `${e.event.event} ${e.event.data}${e.event.context ? ` | ${e.event.context}` : ''}`);
  }
}

export interface TempSpool {
  readonly dir: string;
  batch(opts: {
    deliveryType?: DeliveryType;
    nextHopDomain: string;
    recipients: readonly (string | Recipient)[];
    body: string | Buffer;
    envelope?: Partial<Envelope>;
  }): Promise<DeliveryBatch>;
  cleanup(): Promise<void>;
}

export async function tempSpool(): Promise<TempSpool> {
  const dir = await mkdtemp(join(tmpdir(), 'mailyard-smtp-'));
  let n = 0;
  return {
    dir,
    async batch({ deliveryType = 'DnsConnectorDelivery', nextHopDomain, recipients, body, envelope }) {
      const rcpts: Recipient[] = recipients.map((r) => (typeof r === 'string' ? { address: r } : r));
      const bodyPath = join(dir, `m${n++}.eml`);
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      await writeFile(bodyPath, bytes);
      const env: Envelope = { mailFrom: 'sender@contoso.test', recipients: rcpts, body: '7BIT', smtputf8: false, ...envelope };
      return {
        key: { deliveryType, nextHopDomain, connector: 'To Internet' },
        messageId: newMessageId(),
        envelope: env,
        recipients: rcpts,
        bodyPath,
        size: bytes.length,
        internetMessageId: `<${n}@contoso.test>`,
      };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export const SIMPLE = 'From: sender@contoso.test\r\nTo: rcpt@fabrikam.test\r\nSubject: test\r\nMessage-ID: <1@contoso.test>\r\n\r\nHello.\r\n';

export function signal(ms = 10_000): AbortSignal {
  return AbortSignal.timeout(ms);
}

/**
 * For a describe block: a temp spool made before its tests and every sink the tests start, all
 * closed after them.
 */
export function useSpoolAndSinks(): { spool: () => TempSpool; sink: (opts?: SinkOptions) => Promise<SmtpSink> } {
  let spool: TempSpool | undefined;
  const sinks: SmtpSink[] = [];
  before(async () => {
    spool = await tempSpool();
  });
  after(async () => {
    await Promise.all([...sinks.map((s) => s.close()), spool?.cleanup()]);
  });
  return {
    spool: () => spool!,
    sink: async (opts: SinkOptions = {}) => {
      const s = await startSmtpSink(opts);
      sinks.push(s);
      return s;
    },
  };
}
