/** Shared bits of the delivery-local component tests: temp dirs, spooled messages, batches, log capture. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { Envelope } from '../../../src/model/envelope.js';
import type { MessageId } from '../../../src/model/ids.js';
import type { DeliveryBatch } from '../../../src/model/outcome.js';
import type { ProtocolEvent, ProtocolLogService, ProtocolLogSink } from '../../../src/model/protocol.js';

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `mailyard-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function captureLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines: () => lines };
}

export function captureProtocolLog(): ProtocolLogSink & { events: { service: ProtocolLogService; event: ProtocolEvent }[] } {
  const events: { service: ProtocolLogService; event: ProtocolEvent }[] = [];
  return { events, write: (service, event) => events.push({ service, event }) };
}

export const MESSAGE =
  'From: Ann <ann@fabrikam.com>\r\nTo: bob@contoso.com\r\nSubject: Hello\r\nX-MS-Exchange-Organization-SCL: -1\r\nReceived: from a by b; Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nLine one\r\n.dot line\r\n\r\nLast line\r\n';

let counter = 0;
export async function spooled(dir: string, content: string = MESSAGE, recipients: string[] = ['bob@contoso.com'], over: Partial<Envelope> = {}): Promise<DeliveryBatch> {
  const bodyPath = join(dir, `msg-${++counter}.eml`);
  await writeFile(bodyPath, content);
  const envelope: Envelope = { mailFrom: 'ann@fabrikam.com', recipients: recipients.map((address) => ({ address })), body: '7BIT', smtputf8: false, ...over };
  return {
    key: { deliveryType: 'SmtpDeliveryToMailbox', nextHopDomain: 'mailbox', connector: null },
    messageId: `0000000000${String(counter).padStart(2, '0')}ABCDEF01` as MessageId,
    envelope,
    recipients: envelope.recipients,
    bodyPath,
    size: Buffer.byteLength(content),
  };
}

/** Polls `check` until it returns a value or the deadline passes. */
export async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, what: string, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
