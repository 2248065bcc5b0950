/**
 * Foreign connector delivery: each message is handed to a non-SMTP gateway as a file in the
 * connector's Drop directory (reference 8.1).
 *
 * File format: `<queue id>-<n>.eml` (n counts up from 1 until the name is free), starting with the
 * Replay-format envelope lines — one `X-Sender:` and one `X-Receiver:` per recipient — followed by
 * the message with organization/forest headers removed (header firewall; Received and other
 * routing headers are kept). Lines end in CRLF.
 *
 * Promises:
 * - The file appears under its .eml name complete or not at all: it is written as a hidden
 *   `.<id>.<random>.tmp` in the same directory, fsync'd, hard-linked to the final name (which never
 *   overwrites an existing file), the temp name removed, and the directory fsync'd.
 * - A missing, unwritable or full directory, or a reached `dropDirectoryQuota` (sum of the sizes of
 *   the files in the directory), defers every recipient (4.x.x); the message stays queued.
 * - Recipients are the queue's: the path of the file never depends on an address.
 * - Delivered outcomes are marked `relayed` when the connector has relayDsnRequired or the
 *   recipient asked for NOTIFY=SUCCESS (the gateway sends no DSNs of its own).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { EffectiveForeignConnector } from '../config/defaults.js';
import { findHeaderEnd, formatEnvelopeHeaders, isFirewalledHeader, joinFields, parseHeaderFields } from '../model/message-headers.js';
import type { DeliveryAgent, DeliveryBatch, DeliveryResult, RecipientOutcome } from '../model/outcome.js';
import { reply, type SmtpReply } from '../model/reply.js';

export interface DropDirectoryAgentDeps {
  readonly connector: Pick<EffectiveForeignConnector, 'name' | 'dropDirectory' | 'dropDirectoryQuota'> & { readonly relayDsnRequired?: boolean };
  readonly logger: Logger;
  /** transportService.fsyncEnabled; default true. */
  readonly fsync?: boolean;
}

/** Largest header block we rewrite in memory; a bigger one is copied unchanged. */
const MAX_REWRITE_HEADER = 1024 * 1024;

/** Sum of the sizes of the regular files directly in `dir`. */
export async function directoryUsage(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    try {
      total += (await stat(join(dir, entry.name))).size;
    } catch {
      // removed by the gateway while we counted
    }
  }
  return total;
}

/** Reads the start of the spooled message and returns its header block without firewalled fields. */
async function rewrittenHead(bodyPath: string): Promise<{ head: Buffer; bodyOffset: number }> {
  const fh = await open(bodyPath, 'r');
  try {
    const buf = Buffer.alloc(MAX_REWRITE_HEADER + 4);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const data = buf.subarray(0, bytesRead);
    const split = findHeaderEnd(data);
    if (!split) return { head: Buffer.alloc(0), bodyOffset: 0 };
    const fields = parseHeaderFields(data.subarray(0, split.headerEnd).toString('latin1'));
    if (!fields) return { head: Buffer.alloc(0), bodyOffset: 0 };
    const kept = fields.filter((f) => !isFirewalledHeader(f.name));
    if (kept.length === fields.length) return { head: Buffer.alloc(0), bodyOffset: 0 };
    return { head: Buffer.from(joinFields(kept), 'latin1'), bodyOffset: split.headerEnd };
  } finally {
    await fh.close();
  }
}

function deferAll(batch: DeliveryBatch, r: SmtpReply, detail: string): DeliveryResult {
  const outcomes = new Map<string, RecipientOutcome>();
  for (const rcpt of batch.recipients) outcomes.set(rcpt.address, { kind: 'deferred', category: 'local-io', reply: r, detail });
  return { outcomes };
}

/** A DeliveryAgent for one Foreign connector. */
export function createDropDirectoryAgent(deps: DropDirectoryAgentDeps): DeliveryAgent {
  const log = deps.logger.child({ component: 'drop-directory', connector: deps.connector.name });
  const fsync = deps.fsync ?? true;
  return {
    async deliver(batch: DeliveryBatch, signal: AbortSignal): Promise<DeliveryResult> {
      const dir = deps.connector.dropDirectory;
      const envelopeLines = Buffer.from(formatEnvelopeHeaders(batch.envelope, batch.recipients), 'utf8');
      let tmpPath: string | undefined;
      try {
        const st = await stat(dir);
        if (!st.isDirectory()) return deferAll(batch, reply(451, '4.3.0', 'Drop directory is not a directory'), `${dir} is not a directory`);
        const quota = deps.connector.dropDirectoryQuota;
        if (Number.isFinite(quota)) {
          const used = await directoryUsage(dir);
          if (used + batch.size + envelopeLines.length > quota) {
            log.warn({ messageId: batch.messageId, used, quota }, 'drop directory quota reached; message deferred');
            return deferAll(batch, reply(452, '4.3.1', 'Drop directory quota exceeded'), `drop directory holds ${used} bytes, quota ${quota}`);
          }
        }
        const { head, bodyOffset } = await rewrittenHead(batch.bodyPath);
        tmpPath = join(dir, `.${batch.messageId}.${randomBytes(4).toString('hex')}.tmp`);
        const fh = await open(tmpPath, 'wx', 0o640);
        let written = 0;
        try {
          await fh.write(envelopeLines);
          written += envelopeLines.length;
          if (head.length) {
            await fh.write(head);
            written += head.length;
          }
          for await (const chunk of createReadStream(batch.bodyPath, { start: bodyOffset, signal }) as AsyncIterable<Buffer>) {
            await fh.write(chunk);
            written += chunk.length;
          }
          if (fsync) await fh.sync();
        } finally {
          await fh.close();
        }
        signal.throwIfAborted();
        let finalName = '';
        for (let n = 1; n <= 10_000; n++) {
          const candidate = `${batch.messageId}-${n}.eml`;
          try {
            await link(tmpPath, join(dir, candidate));
            finalName = candidate;
            break;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          }
        }
        if (!finalName) throw new Error('no free file name in the drop directory');
        await unlink(tmpPath).catch(() => undefined);
        tmpPath = undefined;
        if (fsync) {
          const dh = await open(dir, 'r');
          try {
            await dh.sync();
          } finally {
            await dh.close();
          }
        }
        log.info({ messageId: batch.messageId, file: finalName, bytes: written, recipients: batch.recipients.length }, 'message written to drop directory');
        const outcomes = new Map<string, RecipientOutcome>();
        for (const r of batch.recipients) {
          // Handing a file to a gateway is a relay, not a final delivery: a success DSN says "relayed".
          const relayed = deps.connector.relayDsnRequired === true || (r.notify ?? []).includes('SUCCESS');
          outcomes.set(r.address, {
            kind: 'delivered',
            reply: reply(250, '2.0.0', `Written to drop directory as ${finalName}`),
            host: deps.connector.name,
            ...(relayed ? { relayed: true } : {}),
          });
        }
        return { outcomes };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        log.warn({ messageId: batch.messageId, dir, err }, 'drop directory write failed; message deferred');
        const r =
          code === 'ENOSPC' || code === 'EDQUOT'
            ? reply(452, '4.3.1', `Drop directory full (${code})`)
            : code === 'ENOENT'
              ? reply(451, '4.3.0', 'Drop directory does not exist')
              : reply(451, '4.3.0', `Drop directory not writable${code ? ` (${code})` : ''}`);
        return deferAll(batch, r, err instanceof Error ? err.message : String(err));
      } finally {
        if (tmpPath) await unlink(tmpPath).catch(() => undefined);
      }
    },
  };
}
