/**
 * How a delivery result, the passing of time or an administrator changes a queued message. Pure:
 * takes the record, the facts and `now`, returns the new record and the actions for manager.ts to
 * run in order (send DSNs first, then persist or remove, then tracking). Never touches files.
 *
 * Promises: a delivered or failed recipient is terminal and never changes again; a recipient with
 * no outcome in a result counts as deferred (a bug delays mail, it does not bounce it); DSNs follow
 * NOTIFY (default FAILURE,DELAY; [] = NEVER) and are never generated for the null sender.
 */
import { formatReply, type SmtpReply } from '../model/reply.js';
import type { DeliveryResult, RecipientOutcome } from '../model/outcome.js';
import type { DsnNotify } from '../model/envelope.js';
import type { NextHopKey } from '../model/routing.js';
import type { TrackingEventId, TrackingEvent } from '../model/tracking.js';
import { assertNever } from '../model/outcome.js';
import { delayDsnDue, isExpired, nextAttemptAt, type RetryPolicy } from './scheduler.js';
import type { MessageRecord, RecipientState } from './record.js';

export type DsnKind = 'failure' | 'delay' | 'success';

export interface DsnRecipientInfo {
  readonly address: string;
  readonly orcpt?: string;
  readonly action: 'failed' | 'delayed' | 'delivered' | 'relayed';
  /** Enhanced status code, e.g. "5.1.1". */
  readonly status: string;
  /** The reply of the remote server, or our own reason ("550 5.4.4 Unable to route"). */
  readonly diagnostic?: string;
  readonly remoteMta?: string;
  readonly lastAttemptAt?: number;
  /** The last transient error before an expiry, for the human-readable part. */
  readonly lastError?: string;
}

export type QueueAction =
  | { readonly kind: 'dsn'; readonly dsnKind: DsnKind; readonly recipients: readonly DsnRecipientInfo[] }
  | { readonly kind: 'track'; readonly event: Omit<TrackingEvent, 'timestamp' | 'messageId' | 'sender' | 'internetMessageId' | 'totalBytes' | 'subject'> }
  | { readonly kind: 'persist' }
  | { readonly kind: 'remove' };

export interface Applied {
  readonly record: MessageRecord;
  readonly actions: readonly QueueAction[];
}

export const EXPIRED_REPLY: SmtpReply = { code: 550, enhanced: '4.4.7', text: 'QUEUE.Expired; message expired' };
export const UNROUTABLE_REPLY: SmtpReply = { code: 550, enhanced: '5.4.4', text: 'Unable to route' };
export const TOO_LARGE_REPLY: SmtpReply = { code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed maximum message size' };
export const LOOP_REPLY: SmtpReply = { code: 554, enhanced: '5.4.6', text: 'Hop count exceeded - possible mail loop' };
export const ADMIN_REMOVED_REPLY: SmtpReply = { code: 550, enhanced: '5.3.0', text: 'QUEUE.Admin; message deleted by administrative action' };

export function wantsDsn(notify: readonly DsnNotify[] | undefined, kind: DsnKind): boolean {
  if (notify === undefined) return kind === 'failure' || kind === 'delay';
  const k: DsnNotify = kind === 'failure' ? 'FAILURE' : kind === 'delay' ? 'DELAY' : 'SUCCESS';
  return notify.includes(k);
}

function enhancedOf(reply: SmtpReply | undefined, fallback: string): string {
  return reply?.enhanced ?? fallback;
}

export function isTerminal(r: RecipientState): boolean {
  return r.status !== 'pending';
}

function deliveryTrackingEvent(key: NextHopKey | undefined): { eventId: TrackingEventId; source: TrackingEvent['source'] } {
  switch (key?.deliveryType) {
    case 'SmtpDeliveryToMailbox':
      return { eventId: 'DELIVER', source: 'STOREDRIVER' };
    case 'DeliveryAgent':
      return { eventId: 'DELIVER', source: 'AGENT' };
    case 'NonSmtpGatewayDelivery':
      return { eventId: 'TRANSFER', source: 'AGENT' };
    default:
      return { eventId: 'SEND', source: 'SMTP' };
  }
}

/** Adds persist or remove; actions are listed in the order they run: DSNs, persist/remove, tracking. */
function finish(record: MessageRecord, actions: QueueAction[], changed: boolean): Applied {
  const store: QueueAction | undefined = record.recipients.every(isTerminal) ? { kind: 'remove' } : changed ? { kind: 'persist' } : undefined;
  // One notice per kind per change: recipients of the same kind share a DSN.
  const dsns = new Map<DsnKind, DsnRecipientInfo[]>();
  for (const a of actions) if (a.kind === 'dsn') dsns.set(a.dsnKind, [...(dsns.get(a.dsnKind) ?? []), ...a.recipients]);
  const merged: QueueAction[] = [...dsns].map(([dsnKind, recipients]) => ({ kind: 'dsn', dsnKind, recipients }));
  const ordered = [...merged, ...(store ? [store] : []), ...actions.filter((a) => a.kind === 'track')];
  return { record, actions: ordered };
}

/** Builds DSN actions for the recipients that just became terminal/delayed, honouring NOTIFY and the null sender. */
function dsnActions(record: MessageRecord, kind: DsnKind, rcpts: readonly DsnRecipientInfo[], notifyOf: (a: string) => readonly DsnNotify[] | undefined): QueueAction[] {
  if (record.mailFrom === null) return [];
  const wanted = rcpts.filter((r) => wantsDsn(notifyOf(r.address), kind));
  return wanted.length ? [{ kind: 'dsn', dsnKind: kind, recipients: wanted }] : [];
}

function infoFor(r: RecipientState, action: DsnRecipientInfo['action'], reply: SmtpReply | undefined, fallback: string, now: number, extra?: { host?: string; lastError?: string }): DsnRecipientInfo {
  return {
    address: r.address,
    ...(r.orcpt ? { orcpt: r.orcpt } : {}),
    action,
    status: enhancedOf(reply, fallback),
    ...(reply ? { diagnostic: formatReply(reply) } : {}),
    ...(extra?.host ? { remoteMta: extra.host } : {}),
    ...(extra?.lastError ? { lastError: extra.lastError } : {}),
    lastAttemptAt: now,
  };
}

/**
 * How the next hop's session was protected, for the tracking log's source-context of a delivery
 * (SEND): "TLS=TLSv1.3;Cipher=...;CertificateValidated=true", or "TLS=none" for a plaintext
 * session. Nothing when the agent had no network session (Maildir, drop directory).
 */
export function sessionTlsContext(session: DeliveryResult['session']): string | undefined {
  if (!session) return undefined;
  const tls = session.tls;
  if (!tls) return 'TLS=none';
  const validated = tls.authorized === undefined ? '' : `;CertificateValidated=${tls.authorized}`;
  const subject = tls.peerCertificateSubject ? `;RemoteCertificate=${tls.peerCertificateSubject}` : '';
  return `TLS=${tls.protocol};Cipher=${tls.cipher}${validated}${subject}`;
}

/**
 * Applies one agent result for the recipients of one next hop. `batch` lists the addresses that
 * were handed to the agent; other recipients are untouched.
 */
export function applyResult(record: MessageRecord, key: NextHopKey, batch: readonly string[], result: DeliveryResult, now: number, policy: RetryPolicy): Applied {
  const inBatch = new Set(batch);
  const failed: DsnRecipientInfo[] = [];
  const success: DsnRecipientInfo[] = [];
  const track: QueueAction[] = [];
  const delivered: { a: string; s: string; host?: string }[] = [];
  const fails: { a: string; s: string }[] = [];
  const defers: { a: string; s: string }[] = [];
  const scope = result.connectionFailure ? 'connection' : 'message';
  const recipients = record.recipients.map((r): RecipientState => {
    if (!inBatch.has(r.address) || isTerminal(r)) return r;
    const outcome: RecipientOutcome = result.outcomes.get(r.address) ?? { kind: 'deferred', category: 'other', detail: 'the delivery agent reported no outcome for this recipient' };
    switch (outcome.kind) {
      case 'delivered': {
        const s = formatReply(outcome.reply);
        delivered.push({ a: r.address, s, ...(outcome.host ? { host: outcome.host } : {}) });
        if (outcome.relayed || wantsDsn(r.notify, 'success')) success.push(infoFor(r, outcome.relayed ? 'relayed' : 'delivered', outcome.reply, '2.0.0', now, outcome.host ? { host: outcome.host } : undefined));
        const { nextAttemptAt: _n, lastError: _l, ...rest } = r;
        return { ...rest, status: 'delivered', finalReply: s, completedAt: now, ...(outcome.host ? { remoteHost: outcome.host } : {}), ...(outcome.relayed ? { relayed: true } : {}) };
      }
      case 'failed': {
        const s = formatReply(outcome.reply);
        fails.push({ a: r.address, s });
        failed.push(infoFor(r, 'failed', outcome.reply, '5.0.0', now, outcome.host ? { host: outcome.host } : undefined));
        const { nextAttemptAt: _n, ...rest } = r;
        return { ...rest, status: 'failed', finalReply: s, completedAt: now, lastError: outcome.detail, ...(outcome.host ? { remoteHost: outcome.host } : {}) };
      }
      case 'deferred': {
        const err = outcome.reply ? formatReply(outcome.reply) : `451 4.4.0 ${outcome.detail}`;
        const attempts = r.attempts + 1;
        if (isExpired(record.receivedAt, now, policy)) {
          const s = formatReply(EXPIRED_REPLY);
          fails.push({ a: r.address, s });
          failed.push(infoFor(r, 'failed', EXPIRED_REPLY, '4.4.7', now, { lastError: err, ...(outcome.host ? { host: outcome.host } : {}) }));
          const { nextAttemptAt: _n, ...rest } = r;
          return { ...rest, status: 'failed', attempts, finalReply: s, lastError: err, completedAt: now };
        }
        defers.push({ a: r.address, s: err });
        return { ...r, attempts, nextAttemptAt: nextAttemptAt(attempts, scope, now, record.receivedAt, policy), lastError: err, ...(outcome.host ? { remoteHost: outcome.host } : {}) };
      }
      default:
        return assertNever(outcome);
    }
  });
  const d = deliveryTrackingEvent(key);
  const connectorId = key.connector ?? undefined;
  const host = result.session?.host;
  const tlsContext = sessionTlsContext(result.session);
  if (delivered.length) track.push({ kind: 'track', event: { eventId: d.eventId, source: d.source, recipients: delivered.map((x) => x.a), recipientStatus: delivered.map((x) => x.s), ...(connectorId ? { connectorId } : {}), ...(host ? { serverHostname: host } : {}), ...(result.session?.ip ? { serverIp: result.session.ip } : {}), ...(tlsContext ? { sourceContext: tlsContext } : {}) } });
  if (fails.length) track.push({ kind: 'track', event: { eventId: 'FAIL', source: key.deliveryType === 'SmtpDeliveryToMailbox' ? 'STOREDRIVER' : 'SMTP', recipients: fails.map((x) => x.a), recipientStatus: fails.map((x) => x.s), ...(connectorId ? { connectorId } : {}), ...(host ? { serverHostname: host } : {}) } });
  if (defers.length) track.push({ kind: 'track', event: { eventId: 'DEFER', source: 'QUEUE', recipients: defers.map((x) => x.a), recipientStatus: defers.map((x) => x.s), ...(connectorId ? { connectorId } : {}), ...(host ? { serverHostname: host } : {}) } });
  let next: MessageRecord = { ...record, recipients, poisonCount: 0 };
  const notifyOf = (a: string) => record.recipients.find((r) => r.address === a)?.notify;
  const actions: QueueAction[] = [...dsnActions(next, 'failure', failed, notifyOf), ...dsnActions(next, 'success', success.filter((s) => s.action === 'delivered'), notifyOf)];
  // Relayed notices go out when NOTIFY asked for SUCCESS (the remote will not report).
  const relayed = success.filter((s) => s.action === 'relayed' && wantsDsn(notifyOf(s.address), 'success'));
  if (relayed.length && record.mailFrom !== null) actions.push({ kind: 'dsn', dsnKind: 'success', recipients: relayed });
  const delay = delayCheck(next, now, policy);
  if (delay) {
    next = delay.record;
    actions.push(...delay.actions.filter((a) => a.kind === 'dsn'));
  }
  actions.push(...track);
  return finish(next, actions, true);
}

/** The delay DSN, once, for recipients still pending after delayNotificationTimeout. */
export function delayCheck(record: MessageRecord, now: number, policy: RetryPolicy): Applied | undefined {
  if (!delayDsnDue(record.receivedAt, now, record.delayNotified, policy)) return undefined;
  const pending = record.recipients.filter((r) => r.status === 'pending');
  if (!pending.length) return undefined;
  const infos = pending.map((r) => infoFor(r, 'delayed', undefined, '4.4.7', now, r.lastError ? { lastError: r.lastError } : undefined));
  const next: MessageRecord = { ...record, delayNotified: true };
  const actions: QueueAction[] = dsnActions(next, 'delay', infos, (a) => record.recipients.find((r) => r.address === a)?.notify);
  return finish(next, actions, true);
}

/** Fails the given pending recipients (or all pending ones) with one reply: expiry, admin removal, loop, unroutable. */
export function failRecipients(record: MessageRecord, reply: SmtpReply, now: number, opts: { addresses?: readonly string[]; withDsn: boolean; source?: TrackingEvent['source'] }): Applied {
  const which = opts.addresses ? new Set(opts.addresses) : undefined;
  const infos: DsnRecipientInfo[] = [];
  const s = formatReply(reply);
  const recipients = record.recipients.map((r): RecipientState => {
    if (isTerminal(r) || (which && !which.has(r.address))) return r;
    infos.push(infoFor(r, 'failed', reply, reply.enhanced ?? '5.0.0', now, r.lastError ? { lastError: r.lastError } : undefined));
    const { nextAttemptAt: _n, ...rest } = r;
    return { ...rest, status: 'failed', finalReply: s, completedAt: now };
  });
  const next: MessageRecord = { ...record, recipients };
  const actions: QueueAction[] = [];
  if (opts.withDsn) actions.push(...dsnActions(next, 'failure', infos, (a) => record.recipients.find((r) => r.address === a)?.notify));
  if (infos.length) {
    actions.push({ kind: 'track', event: { eventId: 'FAIL', source: opts.source ?? 'QUEUE', recipients: infos.map((i) => i.address), recipientStatus: infos.map(() => s) } });
  }
  return finish(next, actions, infos.length > 0);
}

/**
 * Expiry: every pending recipient fails with an NDR: 550 4.4.7 QUEUE.Expired, or 550 5.4.4 Unable
 * to route for recipients that waited in Unreachable (CONTRACT.md "no route").
 */
export function expireMessage(record: MessageRecord, now: number, policy: RetryPolicy): Applied | undefined {
  if (!isExpired(record.receivedAt, now, policy)) return undefined;
  const pending = record.recipients.filter((r) => r.status === 'pending');
  if (!pending.length) return undefined;
  const unreachable = pending.filter((r) => r.route?.deliveryType === 'Unreachable').map((r) => r.address);
  const others = pending.filter((r) => r.route?.deliveryType !== 'Unreachable').map((r) => r.address);
  if (!unreachable.length) return failRecipients(record, EXPIRED_REPLY, now, { withDsn: true });
  if (!others.length) return failRecipients(record, UNROUTABLE_REPLY, now, { withDsn: true, source: 'ROUTING' });
  const a = failRecipients(record, UNROUTABLE_REPLY, now, { addresses: unreachable, withDsn: true, source: 'ROUTING' });
  const b = failRecipients(a.record, EXPIRED_REPLY, now, { addresses: others, withDsn: true });
  return finish(b.record, [...a.actions, ...b.actions].filter((x) => x.kind === 'dsn' || x.kind === 'track'), true);
}

/** DSNs owed for recipients that became terminal before any DSN was sent (bounced at intake). */
export function pendingDsns(record: MessageRecord, now: number): Applied | undefined {
  const owed = record.recipients.filter((r) => r.dsnPending);
  if (!owed.length) return undefined;
  const infos = owed.filter((r) => r.status === 'failed').map((r) => {
    const m = /^(\d{3})\s+(\d\.\d{1,3}\.\d{1,3})?\s*(.*)$/.exec(r.finalReply ?? '');
    const reply: SmtpReply | undefined = m ? { code: Number(m[1]), ...(m[2] ? { enhanced: m[2] } : {}), text: m[3] ?? '' } : undefined;
    return infoFor(r, 'failed', reply, '5.0.0', now, r.lastError ? { lastError: r.lastError } : undefined);
  });
  const recipients = record.recipients.map((r) => {
    if (!r.dsnPending) return r;
    const { dsnPending: _d, ...rest } = r;
    return rest;
  });
  const next: MessageRecord = { ...record, recipients };
  const actions = dsnActions(next, 'failure', infos, (a) => record.recipients.find((r) => r.address === a)?.notify);
  return finish(next, [...actions], true);
}

/** Recipients of `key` that are due for an attempt now. */
export function dueRecipients(record: MessageRecord, keyStr: string, now: number, keyString: (k: NextHopKey) => string): RecipientState[] {
  return record.recipients.filter((r) => r.status === 'pending' && r.route && keyString(r.route) === keyStr && (r.nextAttemptAt === undefined || r.nextAttemptAt <= now));
}
