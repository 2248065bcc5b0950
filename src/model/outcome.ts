/** Per-recipient results of a delivery attempt, and the interface every delivery agent implements. */
import type { Envelope, Recipient, TlsInfo } from './envelope.js';
import type { MessageId } from './ids.js';
import type { SmtpReply } from './reply.js';
import type { NextHopKey } from './routing.js';

export type FailureCategory = 'dns' | 'connect' | 'tls' | 'protocol' | 'recipient' | 'size' | 'policy' | 'local-io' | 'loop' | 'other';

export type RecipientOutcome =
  | { readonly kind: 'delivered'; readonly reply: SmtpReply; readonly host?: string; readonly relayed?: boolean }
  | { readonly kind: 'deferred'; readonly reply?: SmtpReply; readonly category: FailureCategory; readonly detail: string; readonly host?: string }
  | { readonly kind: 'failed'; readonly reply: SmtpReply; readonly category: FailureCategory; readonly detail: string; readonly host?: string };

/** What the queue hands a delivery agent: one message, one next hop, only that hop's recipients. */
export interface DeliveryBatch {
  readonly key: NextHopKey;
  readonly messageId: MessageId;
  readonly envelope: Envelope; // recipients already narrowed to this batch
  readonly recipients: readonly Recipient[];
  /**
   * Absolute path of the spooled message (headers + body, CRLF line endings, not dot-stuffed). It
   * exists unless `content` is given (to an agent with `usesContent`).
   */
  readonly bodyPath: string;
  /** The same bytes, when the queue still holds them in memory (a journalled small message). */
  readonly content?: Buffer;
  readonly size: number;
  /** Internet Message-ID header, for logs and tracking. */
  readonly internetMessageId?: string;
}

export interface DeliveryResult {
  /** One outcome per batch recipient address; a missing address counts as deferred. */
  readonly outcomes: ReadonlyMap<string, RecipientOutcome>;
  readonly session?: { readonly host: string; readonly ip?: string; readonly tls?: TlsInfo };
  /** The whole next hop is unreachable (connection failed): the queue goes to Retry. */
  readonly connectionFailure?: boolean;
}

export interface DeliveryAgent {
  /** The agent reads `batch.content` when it is given, so the queue need not write the file first. */
  readonly usesContent?: boolean;
  deliver(batch: DeliveryBatch, signal: AbortSignal): Promise<DeliveryResult>;
  /** Close pooled connections (reload, shutdown). */
  close?(): Promise<void>;
}

export function assertNever(x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`);
}
