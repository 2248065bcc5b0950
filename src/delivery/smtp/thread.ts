/**
 * The main thread's side of the delivery thread (thread-main.ts): DeliveryAgents for the Send
 * connectors that hand each batch to the worker and wait for its per-recipient results.
 *
 * The message travels with the batch: a journalled message as its bytes (one copy into the
 * worker), a larger one as its file path. If the worker dies, every delivery in flight gets an
 * error (the queue defers those recipients; nothing is marked delivered) and a new worker is
 * started with the current configuration.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';
import type { DeliveryAgent, DeliveryBatch, DeliveryResult } from '../../model/outcome.js';
import type { SelfEndpoint } from '../../policy/self-loop.js';

/** A batch as it crosses to the worker: the content as a plain byte array of its own. */
type WireBatch = Omit<DeliveryBatch, 'content'> & { readonly content?: Uint8Array };

export type ToThread =
  | { readonly op: 'config'; readonly gen: number; readonly config: Config }
  | { readonly op: 'self'; readonly endpoints: readonly SelfEndpoint[] }
  | { readonly op: 'deliver'; readonly id: number; readonly gen: number; readonly connector: string; readonly batch: WireBatch }
  | { readonly op: 'abort'; readonly id: number }
  | { readonly op: 'retire'; readonly gen: number }
  | { readonly op: 'close' };

export type FromThread =
  | { readonly op: 'result'; readonly id: number; readonly result: DeliveryResult }
  | { readonly op: 'failed'; readonly id: number; readonly message: string }
  | { readonly op: 'log'; readonly line: string }
  | { readonly op: 'closed' };

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/**
 * How to start the worker: the compiled thread-main.js next to this file, or, when the sources
 * run through tsx (tests, a checkout without dist/), a bootstrap that registers tsx in the worker
 * first (loader hooks do not carry over into worker threads).
 */
function entry(): { readonly script: string | URL; readonly eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./thread-main.js', import.meta.url), eval: false };
  const main = new URL('./thread-main.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  return { script: `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(main)}); });`, eval: true };
}

/** A worker that dies this soon after it started is restarted only after a pause (doubling, up to 30 s). */
const QUICK_EXIT_MS = 5_000;
const MAX_RESTART_PAUSE_MS = 30_000;

export class DeliveryThread {
  #worker: Worker | undefined;
  readonly #pending = new Map<number, { resolve: (r: DeliveryResult) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #gen = 0;
  #config: Config;
  #endpoints: readonly SelfEndpoint[] = [];
  #closing = false;
  #pause = 0;
  #restart: NodeJS.Timeout | undefined;

  private constructor(
    config: Config,
    private readonly logger: Logger,
  ) {
    this.#config = config;
  }

  static start(config: Config, logger: Logger): DeliveryThread {
    const t = new DeliveryThread(config, logger);
    t.#spawn();
    return t;
  }

  /** The generation number of the configuration sent at start. */
  get generation(): number {
    return this.#gen;
  }

  #spawn(): void {
    this.#restart = undefined;
    const { script, eval: isEval } = entry();
    const w = new Worker(script, { name: 'mailyard-delivery', eval: isEval });
    const startedAt = Date.now();
    w.unref();
    w.once('online', () => this.logger.info({ code: 'DELIVERY_THREAD', threadId: w.threadId }, 'delivery thread started: Send connectors run on their own thread'));
    w.on('message', (m: FromThread) => this.#onMessage(m));
    w.on('error', (err) => this.logger.error({ err }, `delivery thread failed: ${err.message}`));
    w.on('exit', (code) => {
      if (this.#worker !== w) return;
      this.#worker = undefined;
      const err = new Error(`delivery thread stopped (exit code ${code})`);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
      if (!this.#closing) {
        this.#pause = Date.now() - startedAt < QUICK_EXIT_MS ? Math.min(MAX_RESTART_PAUSE_MS, Math.max(1000, this.#pause * 2)) : 0;
        this.logger.error({ code, restartInMs: this.#pause }, `delivery thread stopped; starting a new one${this.#pause ? ` in ${this.#pause / 1000} s` : ''}`);
        this.#restart = setTimeout(() => this.#spawn(), this.#pause);
        this.#restart.unref();
      }
    });
    this.#worker = w;
    if (this.#gen === 0) this.#gen = 1;
    this.#post({ op: 'config', gen: this.#gen, config: this.#config });
    this.#post({ op: 'self', endpoints: this.#endpoints });
  }

  #post(m: ToThread, transfer?: ArrayBuffer[]): void {
    this.#worker?.postMessage(m, transfer);
  }

  #onMessage(m: FromThread): void {
    switch (m.op) {
      case 'result':
      case 'failed': {
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        if (m.op === 'result') p.resolve(m.result);
        else p.reject(new Error(m.message));
        return;
      }
      case 'log':
        this.#log(m.line);
        return;
      case 'closed':
        return;
    }
  }

  #log(line: string): void {
    try {
      const { level, msg, ...fields } = JSON.parse(line) as { level?: string; msg?: string };
      const lvl = (level && LEVELS.has(level) ? level : 'info') as 'info';
      this.logger[lvl]({ thread: 'delivery', ...fields }, msg ?? '');
    } catch {
      this.logger.info({ thread: 'delivery' }, line);
    }
  }

  /** A new configuration (reload); returns its generation. */
  configure(config: Config): number {
    this.#config = config;
    this.#gen++;
    this.#post({ op: 'config', gen: this.#gen, config });
    return this.#gen;
  }

  /** The endpoints this server listens on now (for MX-points-to-self checks). */
  setEndpoints(endpoints: readonly SelfEndpoint[]): void {
    this.#endpoints = endpoints.map((e) => ({ ...e }));
    this.#post({ op: 'self', endpoints: this.#endpoints });
  }

  /** The agent for one Send connector of one configuration generation. */
  agent(gen: number, connector: string): DeliveryAgent {
    return {
      usesContent: true,
      deliver: (batch, signal) => this.#deliver(gen, connector, batch, signal),
      close: async () => this.#post({ op: 'retire', gen }),
    };
  }

  #deliver(gen: number, connector: string, batch: DeliveryBatch, signal: AbortSignal): Promise<DeliveryResult> {
    if (!this.#worker) return Promise.reject(new Error('delivery thread is not running'));
    const id = this.#nextId++;
    const { content, ...rest } = batch;
    // A copy of exactly the message's bytes, moved (not copied again) into the worker.
    const bytes = content ? new Uint8Array(content) : undefined;
    const p = new Promise<DeliveryResult>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    this.#post({ op: 'deliver', id, gen, connector, batch: { ...rest, ...(bytes ? { content: bytes } : {}) } }, bytes ? [bytes.buffer as ArrayBuffer] : undefined);
    if (!signal.aborted) signal.addEventListener('abort', () => this.#post({ op: 'abort', id }), { once: true });
    else this.#post({ op: 'abort', id });
    return p;
  }

  /** Closes every agent's connections, then stops the thread. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#restart) clearTimeout(this.#restart);
    const w = this.#worker;
    if (!w) return;
    const closed = new Promise<void>((resolve) => {
      const onMessage = (m: FromThread) => {
        if (m.op === 'closed') resolve();
      };
      w.on('message', onMessage);
      w.once('exit', () => resolve());
      setTimeout(resolve, 5000).unref();
    });
    this.#post({ op: 'close' });
    await closed;
    this.#worker = undefined;
    await w.terminate();
  }
}
