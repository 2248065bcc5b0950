/** Identifiers that must not be swapped by accident. */
import { randomBytes } from 'node:crypto';

export type MessageId = string & { readonly __brand: 'MessageId' };
export type SessionId = string & { readonly __brand: 'SessionId' };

/**
 * Queue message ids: time-ordered and unique across restarts, safe as file names.
 * 12 hex digits of milliseconds since the epoch + 8 random hex digits.
 */
export function newMessageId(now: number = Date.now()): MessageId {
  return `${now.toString(16).padStart(12, '0')}${randomBytes(4).toString('hex')}`.toUpperCase() as MessageId;
}

/** Exchange-style 16-hex-digit protocol-log session ids. */
export function newSessionId(): SessionId {
  return randomBytes(8).toString('hex').toUpperCase() as SessionId;
}

export function isMessageId(text: string): text is MessageId {
  return /^[0-9A-F]{20}$/.test(text);
}
