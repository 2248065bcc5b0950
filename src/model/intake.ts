/**
 * The one way into the transport: Receive connectors, Pickup, Replay and the DSN generator all hand
 * messages to an Intake. `accept` resolves only once the message is durably stored (content and
 * envelope fsync'd); only then may a 250 be sent.
 */
import type { Readable } from 'node:stream';
import type { Envelope, MessageSource } from './envelope.js';
import type { MessageId } from './ids.js';
import type { SmtpReply } from './reply.js';

export interface IntakeRequest {
  readonly envelope: Envelope;
  readonly source: MessageSource;
  readonly receivedAt: Date;
  /** Header lines written before the message (our Received header), CRLF-terminated. */
  readonly prepend?: string;
  /**
   * Identifies the submission across a crash of the submitter (Pickup: `pickup:<token>`). Kept with
   * the queued message so the submitter can ask, after a restart, whether it was already stored.
   */
  readonly dedupeKey?: string;
}

export interface IntakeResult {
  readonly id: MessageId;
  readonly size: number;
}

export interface Intake {
  /** body: the message as received (headers + body, dot-unstuffed), CRLF or LF line endings. */
  accept(req: IntakeRequest, body: Readable | Buffer): Promise<IntakeResult>;
}

/** Raised by an Intake when the message cannot be stored; carries the reply for the client. */
export class IntakeError extends Error {
  constructor(readonly reply: SmtpReply, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IntakeError';
  }
}
