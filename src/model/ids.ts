/** Identifiers that must not be swapped by accident. */
import { randomFillSync } from 'node:crypto';

export type MessageId = string & { readonly __brand: 'MessageId' };
export type SessionId = string & { readonly __brand: 'SessionId' };

/**
 * Queue message ids: time-ordered and unique across restarts, safe as file names.
 * 12 hex digits of milliseconds since the epoch + 8 random hex digits.
 */
export function newMessageId(now: number = Date.now()): MessageId {
  return `${now.toString(16).padStart(12, '0').toUpperCase()}${randomHex(4)}` as MessageId;
}

/** Exchange-style 16-hex-digit protocol-log session ids. */
export function newSessionId(): SessionId {
  return randomHex(8) as SessionId;
}

// Ids are made for every session and message; one getrandom call per 4 KB of randomness instead
// of one per id.
const pool = Buffer.alloc(4096);
let poolUsed = pool.length;

function randomHex(bytes: number): string {
  if (poolUsed + bytes > pool.length) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  const text = pool.toString('hex', poolUsed, poolUsed + bytes).toUpperCase();
  poolUsed += bytes;
  return text;
}

export function isMessageId(text: string): text is MessageId {
  return /^[0-9A-F]{20}$/.test(text);
}
