/**
 * The transport's queue manager: the Intake every message enters by, the categorizer pass, one
 * delivery queue per NextHopKey (plus Submission, Unreachable and Poison), retries on Exchange's
 * ladder, delay notices, expiry NDRs, poison detection and the administrator's verbs.
 *
 * Promises:
 * - accept() resolves only when content and record (with routes) are durable; nothing acknowledged
 *   is lost by a crash, and after a restart every message resumes from its record.
 * - Per-recipient state is persisted after every attempt; a delivered recipient is never retried.
 * - At most maxOutboundConnections deliveries run at once, and at most maxPerDomainOutboundConnections
 *   per next hop (mailbox: maxConcurrentMailboxDeliveries; Delivery Agent connectors: their own
 *   maxConcurrentConnections), picked round-robin across queues so a slow hop cannot starve others.
 * - Changes to one message are applied one at a time, in order: DSNs first, then persist/remove,
 *   then tracking. Delivery agents never touch the spool.
 * - Suspended queues (delivery queues, Submission, Unreachable) are saved in the spool before the
 *   verb answers and come back suspended at start(); a suspended Submission still accepts and
 *   stores mail but categorizes nothing until it is resumed.
 * Time comes from the injected Clock; delivery agents from the injected factory.
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { open, readFile, unlink, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config/defaults.js';
import { newMessageId, type MessageId } from '../model/ids.js';
import { IntakeError, type Intake, type IntakeRequest, type IntakeResult } from '../model/intake.js';
import type { DeliveryAgent, DeliveryBatch, DeliveryResult } from '../model/outcome.js';
import { nextHopKeyString, type NextHopKey } from '../model/routing.js';
import type { TrackingEvent, TrackingSink } from '../model/tracking.js';
import type { MessageSource, Recipient } from '../model/envelope.js';
import { systemClock, type Clock } from '../platform/clock.js';
import { categorize, maxHopCountOf } from '../routing/categorizer.js';
import { UNREACHABLE_KEY } from '../routing/resolve.js';
import { attachFullOriginal, composeDsn } from './dsn.js';
import { InflightJournal } from './inflight.js';
import type { MessageRecord, RecipientState } from './record.js';
import { delayDsnAt, expiresAt, retryDelay, retryPolicyOf, type RetryPolicy } from './scheduler.js';
import { Spool, storageError } from './spool.js';
import { SuspendedQueueStore } from './suspended-queues.js';
import {
  ADMIN_REMOVED_REPLY,
  LOOP_REPLY,
  applyResult,
  delayCheck,
  dueRecipients,
  expireMessage,
  failRecipients,
  pendingDsns,
  type Applied,
  type DsnRecipientInfo,
  type QueueAction,
} from './state.js';
import { TimerHeap, type Wakeup } from './timer-heap.js';

export interface TransportDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly tracking: TrackingSink;
  readonly clock?: Clock;
  readonly agents: (key: NextHopKey) => DeliveryAgent;
  /** Default config.server.name. */
  readonly localServer?: string;
}

export type QueueStatus = 'Active' | 'Ready' | 'Retry' | 'Suspended';

export interface QueueInfo {
  readonly identity: string;
  readonly deliveryType: string;
  readonly nextHopDomain: string;
  readonly connector: string | null;
  readonly status: QueueStatus;
  readonly messageCount: number;
  readonly activeCount: number;
  readonly lastError?: string;
  readonly nextRetryTime?: string;
}

export interface MessageInfo {
  readonly id: string;
  readonly queue: string;
  readonly status: 'Active' | 'Ready' | 'Retry' | 'Suspended' | 'Poisoned';
  readonly fromAddress: string;
  readonly subject?: string;
  readonly internetMessageId?: string;
  readonly size: number;
  readonly receivedAt: string;
  readonly expiresAt: string;
  readonly lastError?: string;
  readonly recipients: readonly { address: string; status: string; queue?: string; lastError?: string; nextAttemptAt?: string; finalReply?: string }[];
}

export class QueueAdminError extends Error {
  constructor(readonly code: 'NOT_FOUND' | 'BAD_REQUEST' | 'CONFLICT', message: string) {
    super(message);
    this.name = 'QueueAdminError';
  }
}

interface Entry {
  record: MessageRecord;
  /** keyStrs being delivered right now (arrays: most messages have 0 or 1). */
  inflight: string[];
  chain: Promise<void>;
  keys: string[];
  /** The 'time' wake-up (delay notice or expiry, whichever is next) in the heap, if any. */
  timeWake: Wakeup<Wake> | undefined;
  removed: boolean;
  pendingRemove?: { ndr: boolean };
  /** keyStr -> the retry wake-up scheduled for that queue. */
  armed: Record<string, Wakeup<Wake>> | undefined;
}

interface DQueue {
  readonly keyStr: string;
  readonly key: NextHopKey;
  readonly ready: Set<string>;
  readonly waiting: Set<string>;
  active: number;
  failures: number;
  retryAt?: number;
  suspended: boolean;
  lastError?: string;
}

type Wake = { kind: 'msg'; id: string; keyStr: string } | { kind: 'time'; id: string } | { kind: 'queue'; keyStr: string };

const UNREACHABLE_STR = nextHopKeyString(UNREACHABLE_KEY);
const CLEAN_MARKER = 'clean-shutdown';
const DONE: Promise<void> = Promise.resolve();

function sourceOfKind(kind: MessageSource['kind']): TrackingEvent['source'] {
  return kind === 'pickup' || kind === 'replay' ? 'PICKUP' : kind === 'dsn' ? 'DSN' : 'SMTP';
}

export class Transport {
  readonly intake: Intake;
  readonly spool: Spool;
  private config: Config;
  private policy: RetryPolicy;
  private readonly logger: Logger;
  private readonly tracking: TrackingSink;
  private readonly clock: Clock;
  private readonly agentFor: (key: NextHopKey) => DeliveryAgent;
  private readonly localServer: string;
  private readonly journal: InflightJournal;
  private readonly messages = new Map<string, Entry>();
  /** dedupeKey → message id, for every message in `messages` that carries a key. */
  private readonly dedupe = new Map<string, string>();
  private readonly queues = new Map<string, DQueue>();
  private readonly unreachable = new Set<string>();
  private readonly poison = new Set<string>();
  /** Aborted at shutdown: every delivery in flight gets its signal (one controller, not one per delivery). */
  private readonly shutdown = new AbortController();
  private readonly heap: TimerHeap<Wake>;
  private active = 0;
  private mutations = 0;
  private started = false;
  private stopping = false;
  private unreachableSuspended = false;
  /** Suspend-Queue on Submission: messages are stored but not categorized until resumed. */
  private submissionSuspended = false;
  /** Suspended delivery queues (keyStr -> key), including ones that hold no message right now. */
  private readonly suspendedKeys = new Map<string, NextHopKey>();
  private readonly suspendedStore: SuspendedQueueStore;
  private pumpScheduled = false;
  private idleWaiters: (() => void)[] = [];
  /** Deliveries started (for benchmarks and tests). */
  deliveriesStarted = 0;

  constructor(deps: TransportDeps) {
    // Every delivery in flight listens on the shutdown signal (and stops listening when done).
    setMaxListeners(Infinity, this.shutdown.signal);
    this.config = deps.config;
    this.policy = retryPolicyOf(deps.config.transportService);
    this.logger = deps.logger;
    this.tracking = deps.tracking;
    this.clock = deps.clock ?? systemClock;
    this.agentFor = deps.agents;
    this.localServer = deps.localServer ?? deps.config.server.name;
    this.spool = new Spool({
      dataDir: deps.config.server.dataDir,
      fsync: deps.config.transportService.fsyncEnabled,
      logger: deps.logger,
      liveRecord: (id) => {
        const e = this.messages.get(id);
        return e && !e.removed ? e.record : undefined;
      },
    });
    this.journal = new InflightJournal(this.spool.root);
    this.suspendedStore = new SuspendedQueueStore(this.spool.root, deps.config.transportService.fsyncEnabled);
    this.heap = new TimerHeap<Wake>(this.clock, (items) => this.onWake(items));
    this.intake = { accept: (req, body) => this.accept(req, body) };
  }

  // ---------------------------------------------------------------- lifecycle

  /** Creates the spool if needed and loads every queued message. */
  async start(): Promise<void> {
    await this.spool.init();
    await this.restoreSuspendedQueues();
    const markerPath = join(this.spool.root, CLEAN_MARKER);
    const clean = await stat(markerPath).then(() => true, () => false);
    if (clean) await unlink(markerPath).catch(() => {});
    const crashed = this.journal.recover();
    const t0 = Date.now();
    const { records, quarantined, orphansRemoved } = await this.spool.load();
    for (const q of quarantined) {
      this.emit({ eventId: 'BADMAIL', source: 'QUEUE', recipients: [], sourceContext: `spool record quarantined: ${q.reason}` }, { id: q.id });
    }
    const threshold = this.config.transportService.poisonThreshold;
    const poisonOn = this.config.transportService.poisonMessageDetectionEnabled;
    for (let rec of records) {
      if (crashed.has(rec.id) && !clean) {
        rec = { ...rec, poisonCount: rec.poisonCount + 1 };
        await this.spool.persist(rec).catch((err: unknown) => this.logger.error({ err, messageId: rec.id }, 'could not persist the poison counter'));
      }
      const entry = this.newEntry(rec);
      if (rec.poisoned || (poisonOn && rec.poisonCount >= threshold)) {
        if (!rec.poisoned) {
          entry.record = { ...rec, poisoned: true };
          await this.spool.persist(entry.record).catch(() => {});
          this.logger.error({ event: 'queue.poison', messageId: rec.id, poisonCount: rec.poisonCount }, `message ${rec.id} was being processed during ${rec.poisonCount} crashes; moved to the Poison queue`);
          this.emit({ eventId: 'POISONMESSAGE', source: 'QUEUE', recipients: rec.recipients.map((r) => r.address), sourceContext: `poisonCount=${rec.poisonCount}` }, rec);
        }
        this.poison.add(rec.id);
        this.messages.set(rec.id, entry);
        if (rec.dedupeKey !== undefined) this.dedupe.set(rec.dedupeKey, rec.id);
        continue;
      }
      this.messages.set(rec.id, entry);
      if (rec.dedupeKey !== undefined) this.dedupe.set(rec.dedupeKey, rec.id);
      this.admit(entry);
    }
    this.started = true;
    this.logger.info(
      { event: 'queue.loaded', messages: records.length, quarantined: quarantined.length, orphansRemoved, ms: Date.now() - t0, cleanShutdown: clean },
      `queue loaded: ${records.length} messages`,
    );
    this.schedulePump();
  }

  /** Suspended queues come back before any message is placed, so nothing leaves them by accident. */
  private async restoreSuspendedQueues(): Promise<void> {
    let loaded;
    try {
      loaded = await this.suspendedStore.load();
    } catch (err) {
      this.logger.error({ err, event: 'queue.suspended.load', path: this.suspendedStore.path }, 'could not read the suspended-queues file; no queue is suspended');
      return;
    }
    const { state, error } = loaded;
    if (error) this.logger.warn({ event: 'queue.suspended.load', path: this.suspendedStore.path, error }, `suspended-queues file: ${error}`);
    this.submissionSuspended = state.submission;
    this.unreachableSuspended = state.unreachable;
    for (const key of state.queues) {
      const k = nextHopKeyString(key);
      this.suspendedKeys.set(k, key);
      this.queueFor(k, key);
    }
    const names = [...(state.submission ? ['Submission'] : []), ...(state.unreachable ? ['Unreachable'] : []), ...state.queues.map((q) => q.nextHopDomain)];
    if (names.length) this.logger.info({ event: 'queue.suspended.restored', queues: names }, `queues still suspended: ${names.join(', ')}`);
  }

  private async saveSuspendedQueues(): Promise<void> {
    try {
      await this.suspendedStore.save({ submission: this.submissionSuspended, unreachable: this.unreachableSuspended, queues: [...this.suspendedKeys.values()] });
    } catch (err) {
      this.logger.error({ err, event: 'queue.suspended.save', path: this.suspendedStore.path }, 'could not save the suspended queues; the change holds until the next restart only');
      throw err;
    }
  }

  /** New config: new limits and retry settings; Unreachable recipients are routed again. */
  reload(config: Config): void {
    this.config = config;
    this.policy = retryPolicyOf(config.transportService);
    if (!this.unreachableSuspended) this.resubmitUnreachable();
    this.schedulePump();
  }

  /** Stops starting deliveries, waits up to graceMs for those in flight, then aborts them. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const deadline = Date.now() + graceMs;
    while (this.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.shutdown.abort(new Error('shutting down'));
    const hard = Date.now() + 2000;
    while (this.active > 0 && Date.now() < hard) await new Promise((r) => setTimeout(r, 20));
    await Promise.all([...this.messages.values()].map((e) => e.chain));
    this.heap.stop();
    await this.spool.close().catch(() => {});
    if (this.active === 0) {
      this.journal.close();
      await writeFile(join(this.spool.root, CLEAN_MARKER), `${new Date().toISOString()}\n`).catch(() => {});
    }
  }

  /** Resolves when nothing is in flight and nothing is ready to go (tests, benchmarks). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    if (this.active > 0 || this.pumpScheduled || this.mutations > 0) return false;
    for (const e of this.messages.values()) if (e.inflight.length) return false;
    for (const q of this.queues.values()) {
      if (q.ready.size && !q.suspended && !(q.retryAt !== undefined && q.retryAt > this.clock.now())) return false;
    }
    return true;
  }

  private checkIdle(): void {
    if (this.idleWaiters.length && this.isIdle()) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  // ---------------------------------------------------------------- intake

  private async accept(req: IntakeRequest, body: Readable | Buffer): Promise<IntakeResult> {
    if (this.stopping) throw new IntakeError({ code: 421, enhanced: '4.3.2', text: 'Service not available' }, 'transport is stopping');
    if (!this.started) throw new IntakeError({ code: 451, enhanced: '4.3.2', text: 'System not accepting network messages' }, 'transport not started');
    const id = newMessageId(this.clock.now());
    let written;
    try {
      written = await this.spool.writeContent(id, req.prepend, body);
    } catch (err) {
      throw storageError(err);
    }
    const { info, fh } = written;
    const recipients: RecipientState[] = req.envelope.recipients.map((r) => ({
      address: r.address,
      ...(r.orcpt ? { orcpt: r.orcpt } : {}),
      ...(r.notify ? { notify: [...r.notify] } : {}),
      status: 'pending',
      attempts: 0,
    }));
    let record: MessageRecord = {
      v: 1,
      id,
      receivedAt: req.receivedAt.getTime(),
      mailFrom: req.envelope.mailFrom,
      body: req.envelope.body,
      smtputf8: req.envelope.smtputf8,
      ...(req.envelope.ret ? { ret: req.envelope.ret } : {}),
      ...(req.envelope.envid ? { envid: req.envelope.envid } : {}),
      source: compactSource(req.source),
      size: info.size,
      ...(info.internetMessageId ? { internetMessageId: info.internetMessageId } : {}),
      ...(info.subject ? { subject: info.subject } : {}),
      ...(info.fromHeader ? { fromHeader: info.fromHeader } : {}),
      hopCount: info.hopCount,
      recipients,
      categorized: false,
      delayNotified: false,
      poisonCount: 0,
      suspended: false,
      poisoned: false,
      ...(req.dedupeKey !== undefined ? { dedupeKey: req.dedupeKey } : {}),
    };
    let cat: ReturnType<typeof categorize> = { record, decisions: new Map(), loop: false, changed: false };
    // A suspended Submission queue still accepts and stores; categorization waits for Resume.
    if (!this.submissionSuspended) {
      try {
        cat = categorize(record, this.config, { now: this.clock.now(), localServer: this.localServer });
        record = cat.record;
      } catch (err) {
        // A routing bug must not refuse mail: the message waits in Submission and is retried at start-up.
        this.logger.error({ err, messageId: id }, 'categorizer failed; message left in Submission');
      }
    }
    try {
      await this.spool.commitNew(record, fh);
    } catch (err) {
      throw storageError(err);
    }
    this.emit(
      {
        eventId: 'RECEIVE',
        source: sourceOfKind(req.source.kind),
        recipients: req.envelope.recipients.map((r) => r.address),
        ...(req.source.connector ? { connectorId: `${this.localServer}\\${req.source.connector}` } : {}),
        ...(req.source.client ? { clientIp: req.source.client.address } : {}),
        ...(req.source.clientHostname ?? req.source.helo ? { clientHostname: req.source.clientHostname ?? req.source.helo } : {}),
        ...(req.source.server ? { serverIp: req.source.server.address } : {}),
        serverHostname: this.config.server.fqdn,
      },
      record,
    );
    const resolved = resolveEvent(cat.decisions);
    if (resolved) this.emit(resolved, record);
    if (cat.loop) this.logger.warn({ event: 'queue.loop', messageId: id, hopCount: record.hopCount }, 'hop count exceeded: message bounced as a loop');
    const entry = this.newEntry(record);
    this.messages.set(id, entry);
    if (req.dedupeKey !== undefined) this.dedupe.set(req.dedupeKey, id);
    this.admit(entry);
    this.schedulePump();
    return { id, size: info.size };
  }

  // ---------------------------------------------------------------- placement

  private newEntry(record: MessageRecord): Entry {
    return { record, inflight: [], chain: DONE, keys: [], timeWake: undefined, removed: false, armed: undefined };
  }

  /** A message joins the queues: pending DSNs owed, categorize if needed, then place. */
  private admit(entry: Entry): void {
    const rec = entry.record;
    const needsRoute = rec.recipients.some((r) => r.status === 'pending' && !r.route);
    if (needsRoute && this.submissionSuspended) {
      // Held in Submission until it is resumed; delay notice and expiry still count.
      this.place(entry);
      return;
    }
    if (needsRoute) {
      this.mutate(entry, (r) => {
        const c = categorize(r, this.config, { now: this.clock.now(), localServer: this.localServer });
        if (!c.changed) return undefined;
        const resolved = resolveEvent(c.decisions);
        return { record: c.record, actions: [{ kind: 'persist' }, ...(resolved ? [{ kind: 'track', event: resolved } as const] : [])] };
      });
    }
    if (rec.recipients.some((r) => r.dsnPending) || needsRoute) {
      this.mutate(entry, (r) => pendingDsns(r, this.clock.now()));
    }
    if (!rec.recipients.some((r) => r.status === 'pending') && !needsRoute) {
      // Everything terminal already (e.g. bounced at intake): DSNs above, then removal.
      this.mutate(entry, (r) => (r.recipients.every((x) => x.status !== 'pending') ? { record: r, actions: [{ kind: 'remove' }] } : undefined));
      return;
    }
    this.place(entry);
  }

  /** Puts the message in the queues its pending recipients route to (ready or waiting), and arms its timers. */
  private place(entry: Entry): void {
    if (entry.removed) return;
    const rec = entry.record;
    const id = rec.id;
    const now = this.clock.now();
    const wanted = new Set<string>();
    const dueAt = new Map<string, number>();
    for (const r of rec.recipients) {
      if (r.status !== 'pending' || !r.route) continue;
      const k = nextHopKeyString(r.route);
      wanted.add(k);
      const at = r.nextAttemptAt ?? 0;
      dueAt.set(k, Math.min(dueAt.get(k) ?? Infinity, at));
    }
    for (const k of entry.keys) {
      if (wanted.has(k)) continue;
      if (k === UNREACHABLE_STR) this.unreachable.delete(id);
      else {
        const q = this.queues.get(k);
        q?.ready.delete(id);
        q?.waiting.delete(id);
        if (q) this.maybeDropQueue(q);
      }
    }
    entry.keys = [...wanted];
    if (rec.poisoned) return;
    for (const k of wanted) {
      if (k === UNREACHABLE_STR) {
        this.unreachable.add(id);
        continue;
      }
      const key = rec.recipients.find((r) => r.status === 'pending' && r.route && nextHopKeyString(r.route) === k)!.route!;
      const q = this.queueFor(k, key);
      if (entry.inflight.includes(k)) continue; // re-placed when the attempt ends
      const at = dueAt.get(k) ?? 0;
      if (at <= now && !rec.suspended) {
        q.waiting.delete(id);
        q.ready.add(id);
      } else {
        q.ready.delete(id);
        q.waiting.add(id);
        const old = entry.armed?.[k];
        if (!rec.suspended && old?.at !== at) {
          this.heap.cancel(old);
          (entry.armed ??= {})[k] = this.heap.push(at, { kind: 'msg', id, keyStr: k });
        }
      }
    }
    if (!entry.timeWake) this.armTime(entry);
  }

  /** One heap entry per message for time: the delay notice if still owed, else expiry. */
  private armTime(entry: Entry): void {
    const rec = entry.record;
    const now = this.clock.now();
    const delayAt = rec.delayNotified ? undefined : delayDsnAt(rec.receivedAt, this.policy);
    const at = delayAt !== undefined && delayAt > now ? delayAt : expiresAt(rec.receivedAt, this.policy);
    entry.timeWake = this.heap.push(at, { kind: 'time', id: rec.id });
  }

  private queueFor(k: string, key: NextHopKey): DQueue {
    let q = this.queues.get(k);
    if (!q) {
      q = { keyStr: k, key, ready: new Set(), waiting: new Set(), active: 0, failures: 0, suspended: this.suspendedKeys.has(k) };
      this.queues.set(k, q);
    }
    return q;
  }

  /** Empty queues disappear (kept while in Retry so the ladder position is not forgotten). */
  private maybeDropQueue(q: DQueue): void {
    if (q.ready.size || q.waiting.size || q.active || q.suspended) return;
    if (q.retryAt !== undefined && q.retryAt > this.clock.now()) return;
    this.queues.delete(q.keyStr);
  }

  private onWake(items: Wake[]): void {
    for (const w of items) {
      if (w.kind === 'queue') {
        const q = this.queues.get(w.keyStr);
        if (q) this.maybeDropQueue(q);
        continue;
      }
      const entry = this.messages.get(w.id);
      if (!entry || entry.removed) continue;
      if (w.kind === 'msg') {
        if (entry.armed) delete entry.armed[w.keyStr];
        this.place(entry);
      } else if (w.kind === 'time') {
        entry.timeWake = undefined;
        if (entry.record.poisoned) continue;
        const now = this.clock.now();
        if (now >= expiresAt(entry.record.receivedAt, this.policy)) {
          if (entry.inflight.length) {
            // applyResult expires deferred recipients itself; look again shortly for the others.
            entry.timeWake = this.heap.push(now + 1000, { kind: 'time', id: w.id });
            continue;
          }
          this.mutate(entry, (r) => expireMessage(r, this.clock.now(), this.policy));
        } else {
          this.mutate(entry, (r) => delayCheck(r, this.clock.now(), this.policy));
          this.armTime(entry);
        }
      }
    }
    this.schedulePump();
  }

  // ---------------------------------------------------------------- delivery

  private limitFor(q: DQueue): number {
    const ts = this.config.transportService;
    if (q.key.deliveryType === 'SmtpDeliveryToMailbox') return ts.maxConcurrentMailboxDeliveries;
    if (q.key.deliveryType === 'DeliveryAgent') {
      const c = this.config.deliveryAgentConnectors.find((x) => x.name === q.key.connector);
      if (c) return Math.min(c.maxConcurrentConnections, ts.maxPerDomainOutboundConnections);
    }
    return ts.maxPerDomainOutboundConnections;
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
      this.checkIdle();
    });
  }

  private pump(): void {
    if (this.stopping || !this.started) return;
    const max = this.config.transportService.maxOutboundConnections;
    const now = this.clock.now();
    // Deliveries are reserved in the loop and run after it, once the in-flight journal holds all
    // of their "S" lines (one write for the lot, still before any of them is processed).
    const starting: Array<{ entry: Entry; q: DQueue; due: RecipientState[] }> = [];
    let progress = true;
    while (progress && this.active < max) {
      progress = false;
      for (const q of this.queues.values()) {
        if (this.active >= max) break;
        if (q.suspended || q.active >= this.limitFor(q) || !q.ready.size) continue;
        if (q.retryAt !== undefined && q.retryAt > now) continue;
        const id = q.ready.values().next().value as string;
        q.ready.delete(id);
        const entry = this.messages.get(id);
        if (!entry || entry.removed || entry.record.suspended || entry.record.poisoned || entry.inflight.includes(q.keyStr)) continue;
        const due = dueRecipients(entry.record, q.keyStr, now, nextHopKeyString);
        progress = true;
        if (!due.length) {
          this.place(entry);
          continue;
        }
        if (entry.inflight.length === 0) this.journal.opening(entry.record.id);
        this.reserveDelivery(entry, q);
        starting.push({ entry, q, due });
      }
    }
    if (!starting.length) return;
    this.journal.flushOpenings();
    for (const s of starting) this.startDelivery(s.entry, s.q, s.due);
  }

  /** Counts a delivery as active for the limits (before pump looks at the next queue). */
  private reserveDelivery(entry: Entry, q: DQueue): void {
    q.active++;
    this.active++;
    this.deliveriesStarted++;
    entry.inflight = [...entry.inflight, q.keyStr];
  }

  /** Runs a delivery reserved by reserveDelivery, whose "S" line the journal has written. */
  private startDelivery(entry: Entry, q: DQueue, due: RecipientState[]): void {
    void this.runDelivery(entry, q, due).finally(() => {
      q.active--;
      this.active--;
      entry.inflight = entry.inflight.filter((k) => k !== q.keyStr);
      if (entry.inflight.length === 0) this.journal.end(entry.record.id);
      if (entry.pendingRemove && entry.inflight.length === 0) {
        const ndr = entry.pendingRemove.ndr;
        delete entry.pendingRemove;
        void this.removeNow(entry, ndr);
      } else {
        this.place(entry);
        // Still queued after this attempt: it gets a file of its own and leaves the journal.
        if (entry.inflight.length === 0 && !entry.removed) {
          this.spool.ensureFile(entry.record.id).catch((err: unknown) => this.logger.warn({ err, messageId: entry.record.id }, 'could not write the content file; it stays in the journal'));
        }
      }
      this.maybeDropQueue(q);
      this.schedulePump();
    });
  }

  private async runDelivery(entry: Entry, q: DQueue, due: RecipientState[]): Promise<void> {
    const rec = entry.record;
    const addrs = due.map((r) => r.address);
    // Loop protection: hop count re-checked before relaying.
    if (rec.hopCount > maxHopCountOf(this.config) && q.key.deliveryType !== 'SmtpDeliveryToMailbox') {
      await this.mutate(entry, (r) => failRecipients(r, LOOP_REPLY, this.clock.now(), { addresses: addrs, withDsn: true, source: 'ROUTING' }));
      return;
    }
    const recipients: Recipient[] = due.map((r) => ({ address: r.address, ...(r.orcpt ? { orcpt: r.orcpt } : {}), ...(r.notify ? { notify: r.notify } : {}) }));
    const agent = this.agentFor(q.key);
    // A journalled message is still in memory: an agent that reads it from there gets it; any
    // other agent gets its file, written now.
    const content = agent.usesContent ? this.spool.heldContent(rec.id) : undefined;
    let unwritable: string | undefined;
    if (!content) {
      try {
        await this.spool.ensureFile(rec.id);
      } catch (err) {
        // The agent would only find no file: defer here, with the reason, and try again later.
        unwritable = `could not write the content file: ${(err as Error)?.message ?? String(err)}`;
        this.logger.warn({ err, messageId: rec.id }, 'could not write the content file; recipients deferred');
      }
    }
    const batch: DeliveryBatch = {
      key: q.key,
      messageId: rec.id,
      envelope: {
        mailFrom: rec.mailFrom,
        recipients,
        body: rec.body,
        smtputf8: rec.smtputf8,
        ...(rec.ret ? { ret: rec.ret } : {}),
        ...(rec.envid ? { envid: rec.envid } : {}),
        declaredSize: rec.size,
      },
      recipients,
      bodyPath: this.spool.bodyPath(rec.id),
      ...(content ? { content } : {}),
      size: rec.size,
      ...(rec.internetMessageId ? { internetMessageId: rec.internetMessageId } : {}),
    };
    const deferAll = (detail: string): DeliveryResult => ({ outcomes: new Map(addrs.map((a) => [a, { kind: 'deferred', category: 'other', detail }])) });
    let result: DeliveryResult;
    try {
      result = unwritable ? deferAll(unwritable) : await agent.deliver(batch, this.shutdown.signal);
    } catch (err) {
      this.logger.warn({ err, messageId: rec.id, queue: q.keyStr }, 'delivery agent failed; recipients deferred');
      result = deferAll(`delivery agent error: ${(err as Error)?.message ?? String(err)}`);
    }
    const now = this.clock.now();
    if (result.connectionFailure) {
      q.failures++;
      q.retryAt = now + retryDelay(q.failures, 'connection', this.policy);
      this.heap.push(q.retryAt, { kind: 'queue', keyStr: q.keyStr });
      const first = result.outcomes.values().next().value;
      q.lastError = first && first.kind !== 'delivered' ? (first.reply ? `${first.reply.code} ${first.reply.enhanced ?? ''} ${first.reply.text}`.replace(/\s+/g, ' ') : first.detail) : 'connection failed';
    } else {
      q.failures = 0;
      delete q.retryAt;
      delete q.lastError;
    }
    await this.mutate(entry, (r) => {
      const applied = applyResult(r, q.key, addrs, result, now, this.policy);
      if (result.connectionFailure && q.retryAt !== undefined) {
        // The whole queue waits for its retry time; its recipients share that time.
        const retryAt = q.retryAt;
        const recipients = applied.record.recipients.map((x) => (x.status === 'pending' && addrs.includes(x.address) ? { ...x, nextAttemptAt: Math.max(x.nextAttemptAt ?? 0, retryAt) } : x));
        return { record: { ...applied.record, recipients }, actions: applied.actions };
      }
      return applied;
    });
  }

  // ---------------------------------------------------------------- applying changes

  /** Serialises changes to one message; `fn` sees the latest record. Undefined = no change. */
  private mutate(entry: Entry, fn: (r: MessageRecord) => Applied | undefined): Promise<void> {
    this.mutations++;
    const run = async () => {
      if (entry.removed) return;
      const applied = fn(entry.record);
      if (!applied) return;
      entry.record = applied.record;
      await this.runActions(entry, applied.actions);
      if (!entry.removed) this.place(entry);
    };
    const p = entry.chain
      .then(run, run)
      .catch((err: unknown) => this.logger.error({ err, messageId: entry.record.id }, 'queue state change failed'))
      .finally(() => {
        this.mutations--;
        this.schedulePump();
      });
    entry.chain = p;
    return p;
  }

  private async runActions(entry: Entry, actions: readonly QueueAction[]): Promise<void> {
    const rec = entry.record;
    const dsnEvents: (() => void)[] = [];
    for (const a of actions) if (a.kind === 'dsn') { const ev = await this.sendDsn(rec, a.dsnKind, a.recipients); if (ev) dsnEvents.push(ev); }
    for (const a of actions) {
      if (a.kind === 'persist') {
        await this.spool.persist(entry.record).catch((err: unknown) => this.logger.error({ err, messageId: rec.id }, 'could not persist the queue record'));
      } else if (a.kind === 'remove') {
        entry.removed = true;
        this.forget(entry);
        await this.spool.remove(rec.id).catch((err: unknown) => this.logger.error({ err, messageId: rec.id }, 'could not remove the spooled message'));
      }
    }
    for (const a of actions) if (a.kind === 'track') this.emit(a.event, rec);
    for (const ev of dsnEvents) ev();
  }

  private forget(entry: Entry): void {
    const id = entry.record.id;
    for (const k of entry.keys) {
      const q = this.queues.get(k);
      if (q) {
        q.ready.delete(id);
        q.waiting.delete(id);
        this.maybeDropQueue(q);
      }
    }
    this.unreachable.delete(id);
    this.poison.delete(id);
    this.messages.delete(id);
    // Its wake-ups leave with it: the heap holds queued messages only.
    this.heap.cancel(entry.timeWake);
    entry.timeWake = undefined;
    if (entry.armed) for (const w of Object.values(entry.armed)) this.heap.cancel(w);
    entry.armed = undefined;
    const key = entry.record.dedupeKey;
    if (key !== undefined && this.dedupe.get(key) === id) this.dedupe.delete(key);
    entry.keys = [];
  }

  private emit(e: Omit<TrackingEvent, 'timestamp' | 'messageId' | 'sender'>, rec: Partial<Omit<MessageRecord, 'id'>> & { id: string }): void {
    try {
      this.tracking.emit({
        timestamp: new Date(this.clock.now()),
        messageId: rec.id,
        sender: rec.mailFrom ?? '',
        ...(rec.internetMessageId ? { internetMessageId: rec.internetMessageId } : {}),
        ...(rec.size !== undefined ? { totalBytes: rec.size } : {}),
        ...(rec.subject ? { subject: rec.subject } : {}),
        ...e,
      });
    } catch (err) {
      this.logger.warn({ err }, 'tracking sink failed');
    }
  }

  private defaultDomain(): string {
    const d = this.config.acceptedDomains.find((a) => a.default && !a.domainName.startsWith('*')) ?? this.config.acceptedDomains.find((a) => !a.domainName.startsWith('*'));
    return d?.domainName ?? this.config.server.fqdn;
  }

  /** Composes a DSN and submits it through the Intake with the null sender. A failure is logged and dropped. */
  /** Returns the DSN tracking event to emit once the FAIL/SEND events of the same change are out. */
  private async sendDsn(rec: MessageRecord, kind: 'failure' | 'delay' | 'success', recipients: readonly DsnRecipientInfo[]): Promise<(() => void) | undefined> {
    if (rec.mailFrom === null || !recipients.length) return undefined;
    const mailFrom = rec.mailFrom;
    try {
      const maxAttach = this.config.transportService.externalDsnMaxMessageAttachSize;
      const full = attachFullOriginal(kind, rec.ret, rec.size, maxAttach);
      const held = this.spool.heldContent(rec.id);
      const original = held ? (full ? held : headOf(held)) : full ? await readFile(this.spool.bodyPath(rec.id)) : await readHead(this.spool.bodyPath(rec.id));
      const now = new Date(this.clock.now());
      const fqdn = this.config.server.fqdn;
      const token = randomBytes(8).toString('hex').toUpperCase();
      const dsn = composeDsn({
        kind,
        reportingMta: fqdn,
        from: `postmaster@${this.defaultDomain()}`,
        to: rec.mailFrom,
        recipients,
        ...(rec.subject ? { originalSubject: rec.subject } : {}),
        ...(rec.internetMessageId ? { originalMessageId: rec.internetMessageId } : {}),
        ...(rec.envid ? { envid: rec.envid } : {}),
        ...(rec.ret ? { ret: rec.ret } : {}),
        arrivalDate: new Date(rec.receivedAt),
        now,
        ...(kind === 'delay' ? { retryUntil: new Date(expiresAt(rec.receivedAt, this.policy)) } : {}),
        original,
        originalIsHeadersOnly: !full,
        boundary: `=_mailyard_${rec.id}_${token}`,
        messageId: `${token}.${rec.id}@${fqdn}`,
      });
      const res = await this.accept(
        {
          envelope: { mailFrom: null, recipients: [{ address: rec.mailFrom, notify: [] }], body: rec.body === '7BIT' ? '8BITMIME' : rec.body, smtputf8: rec.smtputf8 },
          source: { kind: 'dsn' },
          receivedAt: now,
        },
        dsn,
      );
      return () =>
        this.emit(
          { eventId: 'DSN', source: 'DSN', recipients: recipients.map((r) => r.address), recipientStatus: recipients.map((r) => `${r.action} ${r.status}`), relatedRecipientAddress: mailFrom, reference: res.id, sourceContext: kind },
          rec,
        );
    } catch (err) {
      this.logger.error({ err, messageId: rec.id, kind }, 'could not generate a delivery status notification; dropped');
      return undefined;
    }
  }

  // ---------------------------------------------------------------- Unreachable / admin verbs

  private resubmitUnreachable(): number {
    let n = 0;
    for (const id of [...this.unreachable]) {
      const entry = this.messages.get(id);
      if (!entry) continue;
      n++;
      this.mutate(entry, (r) => {
        const c = categorize(r, this.config, { now: this.clock.now(), localServer: this.localServer, rerouteUnreachable: true });
        if (!c.changed) return undefined;
        const owed = pendingDsns(c.record, this.clock.now());
        const base: Applied = owed ?? { record: c.record, actions: [{ kind: 'persist' }] };
        const actions: QueueAction[] = [...base.actions];
        if (!actions.some((a) => a.kind === 'persist' || a.kind === 'remove')) actions.push({ kind: 'persist' });
        return { record: base.record, actions };
      });
    }
    return n;
  }

  /** A message id (also as Server\\Queue\\id) of a queued message, rather than a queue identity. */
  private isMessageTarget(target: string): boolean {
    const last = target.split('\\').pop() ?? '';
    return this.messages.has(target) || this.messages.has(target.toUpperCase()) || this.messages.has(last.toUpperCase());
  }

  private entryOrThrow(id: string): Entry {
    const e = this.messages.get(id) ?? this.messages.get(id.toUpperCase()) ?? this.messages.get((id.split('\\').pop() ?? '').toUpperCase());
    if (!e || e.removed) throw new QueueAdminError('NOT_FOUND', `no message with id ${id}`);
    return e;
  }

  private queueIdentity(q: DQueue): string {
    return q.key.nextHopDomain;
  }

  private findQueue(name: string): DQueue | 'Unreachable' | 'Poison' | 'Submission' {
    const n = name.split('\\').pop() ?? name;
    if (/^unreachable( domain)?$/i.test(n)) return 'Unreachable';
    if (/^poison( message)?$/i.test(n)) return 'Poison';
    if (/^submission$/i.test(n)) return 'Submission';
    for (const q of this.queues.values()) if (q.keyStr === name || this.queueIdentity(q).toLowerCase() === n.toLowerCase()) return q;
    throw new QueueAdminError('NOT_FOUND', `no queue named ${name}`);
  }

  listQueues(): QueueInfo[] {
    const now = this.clock.now();
    const out: QueueInfo[] = [];
    const submission = [...this.messages.values()].filter((e) => !e.record.categorized && !e.removed).length;
    out.push({ identity: 'Submission', deliveryType: 'Undefined', nextHopDomain: 'Submission', connector: null, status: this.submissionSuspended ? 'Suspended' : 'Ready', messageCount: submission, activeCount: 0 });
    for (const q of this.queues.values()) {
      const count = new Set([...q.ready, ...q.waiting, ...[...this.messages.values()].filter((e) => e.inflight.includes(q.keyStr)).map((e) => e.record.id)]).size;
      const retry = q.retryAt !== undefined && q.retryAt > now;
      out.push({
        identity: this.queueIdentity(q),
        deliveryType: q.key.deliveryType,
        nextHopDomain: q.key.nextHopDomain,
        connector: q.key.connector,
        status: q.suspended ? 'Suspended' : q.active ? 'Active' : retry ? 'Retry' : 'Ready',
        messageCount: count,
        activeCount: q.active,
        ...(q.lastError ? { lastError: q.lastError } : {}),
        ...(retry ? { nextRetryTime: new Date(q.retryAt!).toISOString() } : {}),
      });
    }
    out.push({
      identity: 'Unreachable',
      deliveryType: 'Unreachable',
      nextHopDomain: 'Unreachable Domain',
      connector: null,
      status: this.unreachableSuspended ? 'Suspended' : 'Ready',
      messageCount: this.unreachable.size,
      activeCount: 0,
      ...(this.unreachable.size ? { lastError: 'A matching connector cannot be found to route the external recipient' } : {}),
    });
    if (this.poison.size) out.push({ identity: 'Poison', deliveryType: 'Undefined', nextHopDomain: 'Poison Message', connector: null, status: 'Suspended', messageCount: this.poison.size, activeCount: 0 });
    return out;
  }

  private messageInfo(e: Entry, queueName: string): MessageInfo {
    const r = e.record;
    const now = this.clock.now();
    const pending = r.recipients.filter((x) => x.status === 'pending');
    const status: MessageInfo['status'] = r.poisoned ? 'Poisoned' : r.suspended ? 'Suspended' : e.inflight.length ? 'Active' : pending.some((x) => x.nextAttemptAt !== undefined && x.nextAttemptAt > now) ? 'Retry' : 'Ready';
    const lastError = pending.find((x) => x.lastError)?.lastError;
    return {
      id: r.id,
      queue: queueName,
      status,
      fromAddress: r.mailFrom ?? '<>',
      ...(r.subject ? { subject: r.subject } : {}),
      ...(r.internetMessageId ? { internetMessageId: r.internetMessageId } : {}),
      size: r.size,
      receivedAt: new Date(r.receivedAt).toISOString(),
      expiresAt: new Date(expiresAt(r.receivedAt, this.policy)).toISOString(),
      ...(lastError ? { lastError } : {}),
      recipients: r.recipients.map((x) => ({
        address: x.address,
        status: x.status,
        ...(x.route ? { queue: x.route.deliveryType === 'Unreachable' ? 'Unreachable' : x.route.nextHopDomain } : {}),
        ...(x.lastError ? { lastError: x.lastError } : {}),
        ...(x.nextAttemptAt !== undefined ? { nextAttemptAt: new Date(x.nextAttemptAt).toISOString() } : {}),
        ...(x.finalReply ? { finalReply: x.finalReply } : {}),
      })),
    };
  }

  listMessages(queue?: string): MessageInfo[] {
    const out: MessageInfo[] = [];
    if (queue) {
      const q = this.findQueue(queue);
      if (q === 'Unreachable') for (const id of this.unreachable) { const e = this.messages.get(id); if (e) out.push(this.messageInfo(e, 'Unreachable')); }
      else if (q === 'Poison') for (const id of this.poison) { const e = this.messages.get(id); if (e) out.push(this.messageInfo(e, 'Poison')); }
      else if (q === 'Submission') for (const e of this.messages.values()) { if (!e.record.categorized) out.push(this.messageInfo(e, 'Submission')); }
      else {
        for (const e of this.messages.values()) if (e.keys.includes(q.keyStr)) out.push(this.messageInfo(e, this.queueIdentity(q)));
      }
      return out;
    }
    for (const e of this.messages.values()) {
      if (e.removed) continue;
      const names = e.record.poisoned ? ['Poison'] : [...e.keys].map((k) => (k === UNREACHABLE_STR ? 'Unreachable' : this.queues.get(k) ? this.queueIdentity(this.queues.get(k)!) : k));
      out.push(this.messageInfo(e, names.join(',') || 'Submission'));
    }
    return out;
  }

  getMessage(id: string): MessageInfo {
    const e = this.entryOrThrow(id);
    return this.messageInfo(e, [...e.keys].join(','));
  }

  /** Retry-Queue: try now and reset the ladder; for Unreachable, route its messages again. */
  retryQueue(name: string): { queue: string; messages: number } {
    const q = this.findQueue(name);
    if (q === 'Unreachable') return { queue: 'Unreachable', messages: this.resubmitUnreachable() };
    if (q === 'Poison') throw new QueueAdminError('BAD_REQUEST', 'the Poison queue cannot be retried as a whole; resume its messages one by one');
    if (q === 'Submission') return { queue: 'Submission', messages: 0 };
    q.failures = 0;
    delete q.retryAt;
    let n = 0;
    for (const id of [...q.waiting, ...q.ready]) {
      const e = this.messages.get(id);
      if (!e) continue;
      n++;
      e.record = { ...e.record, recipients: e.record.recipients.map((r) => (r.route && nextHopKeyString(r.route) === q.keyStr && r.status === 'pending' ? (({ nextAttemptAt: _n, ...rest }) => rest)(r) : r)) };
      this.place(e);
    }
    this.schedulePump();
    return { queue: this.queueIdentity(q), messages: n };
  }

  /** Suspends a message (by id) or a queue (by identity). */
  async suspend(target: string): Promise<{ suspended: string }> {
    if (this.isMessageTarget(target)) {
      const e = this.entryOrThrow(target);
      if (e.record.poisoned) throw new QueueAdminError('BAD_REQUEST', 'messages in the Poison queue are already suspended');
      await this.mutate(e, (r) => ({ record: { ...r, suspended: true }, actions: [{ kind: 'persist' }] }));
      for (const k of e.keys) this.queues.get(k)?.ready.delete(e.record.id);
      return { suspended: e.record.id };
    }
    const q = this.findQueue(target);
    if (q === 'Poison') throw new QueueAdminError('BAD_REQUEST', 'the Poison queue is always suspended');
    if (q === 'Unreachable') this.unreachableSuspended = true;
    else if (q === 'Submission') this.submissionSuspended = true;
    else {
      q.suspended = true;
      this.suspendedKeys.set(q.keyStr, q.key);
    }
    await this.saveSuspendedQueues();
    this.logger.info({ event: 'queue.suspend', queue: typeof q === 'string' ? q : q.keyStr }, `queue ${typeof q === 'string' ? q : this.queueIdentity(q)} suspended`);
    return { suspended: typeof q === 'string' ? q : this.queueIdentity(q) };
  }

  /** Resumes a message or a queue; resuming a poisoned message resubmits it. */
  async resume(target: string): Promise<{ resumed: string }> {
    if (this.isMessageTarget(target)) {
      const e = this.entryOrThrow(target);
      if (e.record.poisoned) {
        this.poison.delete(e.record.id);
        this.emit({ eventId: 'POISONMESSAGE', source: 'QUEUE', recipients: e.record.recipients.map((r) => r.address), sourceContext: 'resumed by administrator' }, e.record);
        await this.mutate(e, (r) => ({ record: { ...r, poisoned: false, poisonCount: 0, suspended: false }, actions: [{ kind: 'persist' }] }));
      } else {
        await this.mutate(e, (r) => ({ record: { ...r, suspended: false }, actions: [{ kind: 'persist' }] }));
      }
      this.admit(e);
      this.schedulePump();
      return { resumed: e.record.id };
    }
    const q = this.findQueue(target);
    if (q === 'Poison') throw new QueueAdminError('BAD_REQUEST', 'the Poison queue cannot be resumed as a whole; resume its messages one by one');
    if (q === 'Unreachable') this.unreachableSuspended = false;
    else if (q === 'Submission') this.submissionSuspended = false;
    else {
      q.suspended = false;
      this.suspendedKeys.delete(q.keyStr);
    }
    await this.saveSuspendedQueues();
    this.logger.info({ event: 'queue.resume', queue: typeof q === 'string' ? q : q.keyStr }, `queue ${typeof q === 'string' ? q : this.queueIdentity(q)} resumed`);
    if (q === 'Unreachable') this.resubmitUnreachable();
    else if (q === 'Submission') this.releaseSubmission();
    else this.maybeDropQueue(q);
    this.schedulePump();
    return { resumed: typeof q === 'string' ? q : this.queueIdentity(q) };
  }

  /** Resume-Queue Submission: every message held there is categorized and placed. */
  private releaseSubmission(): number {
    let n = 0;
    for (const e of [...this.messages.values()]) {
      if (e.removed || e.record.poisoned) continue;
      if (!e.record.recipients.some((r) => r.status === 'pending' && !r.route)) continue;
      n++;
      this.admit(e);
    }
    return n;
  }

  /** Remove-Message: with ndr (default true) the sender gets an NDR for the recipients not yet delivered. */
  async remove(id: string, opts: { ndr?: boolean } = {}): Promise<{ removed: string; pending?: boolean }> {
    const e = this.entryOrThrow(id);
    const ndr = opts.ndr ?? true;
    if (e.inflight.length) {
      e.pendingRemove = { ndr };
      return { removed: e.record.id, pending: true };
    }
    await this.removeNow(e, ndr);
    return { removed: e.record.id };
  }

  private async removeNow(e: Entry, ndr: boolean): Promise<void> {
    const pending = e.record.recipients.filter((r) => r.status === 'pending').map((r) => r.address);
    if (!ndr) this.emit({ eventId: 'DROP', source: 'QUEUE', recipients: pending, sourceContext: 'removed by administrator without NDR' }, e.record);
    await this.mutate(e, (r) => {
      const applied = failRecipients(r, ADMIN_REMOVED_REPLY, this.clock.now(), { withDsn: ndr, source: 'QUEUE' });
      const actions = applied.actions.filter((a) => a.kind !== 'persist' && a.kind !== 'remove' && (ndr || a.kind !== 'track'));
      return { record: applied.record, actions: [...actions, { kind: 'remove' }] };
    });
  }

  /** Export-Message: the message in Replay-directory format (X-Sender / X-Receiver, then the message). */
  async export(id: string): Promise<Buffer> {
    const e = this.entryOrThrow(id);
    const r = e.record;
    const params: string[] = [];
    if (r.body !== '7BIT') params.push(`BODY=${r.body}`);
    if (r.ret) params.push(`RET=${r.ret}`);
    if (r.envid) params.push(`ENVID=${r.envid}`);
    const lines = [`X-Sender: <${r.mailFrom ?? ''}>${params.length ? ` ${params.join(' ')}` : ''}`];
    for (const x of r.recipients) {
      if (x.status !== 'pending') continue;
      const p: string[] = [];
      if (x.notify) p.push(`NOTIFY=${x.notify.length ? x.notify.join(',') : 'NEVER'}`);
      if (x.orcpt) p.push(`ORcpt=${x.orcpt}`);
      lines.push(`X-Receiver: <${x.address}>${p.length ? ` ${p.join(' ')}` : ''}`);
    }
    lines.push('X-CreatedBy: MSExchange15', `X-Source: Mailyard export`);
    const content = await this.spool.readContent(r.id);
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8'), content]);
  }

  /** Counts for health and metrics. */
  stats(): { messages: number; active: number; queues: number; unreachable: number; poison: number; wakeups: number } {
    return { messages: this.messages.size, active: this.active, queues: this.queues.size, unreachable: this.unreachable.size, poison: this.poison.size, wakeups: this.heap.size };
  }

  /** Ids of every queued message (tests). */
  /** Whether a message submitted with this IntakeRequest.dedupeKey is still in the queue. */
  hasDedupeKey(key: string): boolean {
    return this.dedupe.has(key);
  }

  messageIds(): MessageId[] {
    return [...this.messages.keys()] as MessageId[];
  }
}

/** The RESOLVE tracking event for a categorizer pass (undefined when nothing was decided). */
function resolveEvent(decisions: ReturnType<typeof categorize>['decisions']): Omit<TrackingEvent, 'timestamp' | 'messageId' | 'sender' | 'internetMessageId' | 'totalBytes' | 'subject'> | undefined {
  if (!decisions.size) return undefined;
  const rcpts = [...decisions.keys()];
  return {
    eventId: 'RESOLVE',
    source: 'ROUTING',
    recipients: rcpts,
    recipientStatus: rcpts.map((a) => {
      const d = decisions.get(a)!;
      return d.kind === 'routed' ? `${d.key.deliveryType} ${d.key.nextHopDomain}${d.key.connector ? ` via ${d.key.connector}` : ''}` : `Unreachable ${d.enhanced} ${d.reason}`;
    }),
  };
}

/**
 * What the record keeps of where a message came from: enough for an administrator and for logs;
 * session details (TLS, permissions) stay in the protocol log, so a queued message costs a small
 * record in memory.
 */
function compactSource(s: MessageSource): MessageSource {
  return {
    kind: s.kind,
    ...(s.connector ? { connector: s.connector } : {}),
    ...(s.client ? { client: { address: s.client.address, port: s.client.port } } : {}),
    ...(s.helo ? { helo: s.helo } : {}),
    ...(s.authUser ? { authUser: s.authUser } : {}),
  };
}

/** Reads the header block of a spooled message (up to the first empty line, at most 256 KB). */
async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(256 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return headOf(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** The header block of a message (with its blank line), or all of it when there is no body. */
function headOf(b: Buffer): Buffer {
  const end = b.indexOf('\r\n\r\n');
  return end >= 0 ? b.subarray(0, end + 4) : b;
}
