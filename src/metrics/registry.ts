/**
 * Every Prometheus metric Mailyard exports, defined once (name, help, labels), served on the admin
 * endpoint at GET /metrics. Counters are fed from the message tracking events, so the numbers and
 * the tracking log always agree; gauges are read from the live services at scrape time.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { TrackingEvent, TrackingSink } from '../model/index.js';

export interface LiveGauges {
  queuedMessages(): number;
  deliveryQueues(): number;
  unreachableMessages(): number;
  poisonMessages(): number;
  activeDeliveries(): number;
  smtpSessions(): number;
  /** Back pressure: 0 Normal, 1 Medium, 2 High. */
  backPressureLevel(): number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #events: Counter<'event' | 'source'>;
  readonly #recipients: Counter<'event'>;
  readonly #bytes: Counter;

  constructor(live: LiveGauges) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'mailyard_process_' });
    this.#events = new Counter({
      name: 'mailyard_tracking_events_total',
      help: 'Message tracking events by event id (RECEIVE, DELIVER, SEND, DEFER, FAIL, DSN, ...) and source',
      labelNames: ['event', 'source'],
      registers,
    });
    this.#recipients = new Counter({
      name: 'mailyard_recipients_total',
      help: 'Recipients named by tracking events, by event id (DELIVER and SEND count delivered recipients)',
      labelNames: ['event'],
      registers,
    });
    this.#bytes = new Counter({ name: 'mailyard_received_bytes_total', help: 'Bytes of messages accepted into the queue', registers });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('mailyard_queue_messages', 'Messages in the queue (every queue)', live.queuedMessages);
    gauge('mailyard_queue_delivery_queues', 'Delivery queues (one per next hop)', live.deliveryQueues);
    gauge('mailyard_queue_unreachable_messages', 'Messages in the Unreachable queue', live.unreachableMessages);
    gauge('mailyard_queue_poison_messages', 'Messages in the Poison queue', live.poisonMessages);
    gauge('mailyard_deliveries_active', 'Deliveries in progress', live.activeDeliveries);
    gauge('mailyard_smtp_sessions', 'Open SMTP sessions on Receive connectors', live.smtpSessions);
    gauge('mailyard_back_pressure_level', 'Back pressure: 0 Normal, 1 Medium (anonymous senders refused), 2 High (all new mail refused)', live.backPressureLevel);
  }

  /** A tracking sink that counts the events it sees. */
  readonly tracking: TrackingSink = {
    emit: (e: TrackingEvent) => {
      this.#events.inc({ event: e.eventId, source: e.source });
      this.#recipients.inc({ event: e.eventId }, e.recipients.length);
      if (e.eventId === 'RECEIVE' && e.totalBytes) this.#bytes.inc(e.totalBytes);
    },
  };

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
