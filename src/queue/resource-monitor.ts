/**
 * Samples what back pressure watches (free space on the spool's file system, messages in the
 * queue) every checkInterval and keeps the current level (policy/back-pressure.ts). A change of
 * level is logged once, as a warning going up and as info coming back down. Reading the level is
 * free: the Receive connectors ask it at every MAIL FROM.
 */
import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import { describePressure, evaluatePressure, NORMAL, type BackPressureSettings, type PressureLevel, type PressureState } from '../policy/back-pressure.js';

export interface ResourceMonitorOptions {
  /** A directory on the spool's file system. */
  readonly dir: string;
  readonly settings: BackPressureSettings & { readonly checkInterval: number };
  readonly queuedMessages: () => number;
  readonly logger: Logger;
}

export class ResourceMonitor {
  #state: PressureState = NORMAL;
  #settings: ResourceMonitorOptions['settings'];
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #statfsFailed = false;

  constructor(private readonly opts: ResourceMonitorOptions) {
    this.#settings = opts.settings;
  }

  get level(): PressureLevel {
    return this.#state.level;
  }

  get state(): PressureState {
    return this.#state;
  }

  /** First check now (so a server started on a full disk refuses mail from the start), then periodic. */
  async start(): Promise<void> {
    await this.check();
    this.#arm();
  }

  /** New settings from a reload take effect at once. */
  async reload(settings: ResourceMonitorOptions['settings']): Promise<void> {
    this.#settings = settings;
    this.#arm();
    await this.check();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One sample; concurrent calls share it. */
  check(): Promise<void> {
    this.#checking ??= this.#sample().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  #arm(): void {
    this.stop();
    if (!this.#settings.enabled) return;
    this.#timer = setInterval(() => void this.check(), Math.max(100, this.#settings.checkInterval));
    this.#timer.unref();
  }

  async #sample(): Promise<void> {
    const settings = this.#settings;
    let freeDiskBytes: number | undefined;
    if (settings.enabled) {
      try {
        const s = await statfs(this.opts.dir);
        freeDiskBytes = Number(s.bavail) * Number(s.bsize);
        this.#statfsFailed = false;
      } catch (err) {
        if (!this.#statfsFailed) this.opts.logger.warn({ err, event: 'backpressure.statfs', dir: this.opts.dir }, 'cannot read the free space of the spool file system');
        this.#statfsFailed = true;
      }
    }
    const before = this.#state;
    const after = evaluatePressure({ freeDiskBytes, queuedMessages: this.opts.queuedMessages() }, settings, before);
    this.#state = after;
    if (after.level !== before.level) {
      const fields = { event: 'backpressure', level: after.level, previous: before.level, resources: after.resources };
      const text = `back pressure ${before.level} -> ${describePressure(after)}`;
      if (after.level === 'Normal' || (after.level === 'Medium' && before.level === 'High')) this.opts.logger.info(fields, text);
      else this.opts.logger.warn(fields, text);
    }
  }
}
