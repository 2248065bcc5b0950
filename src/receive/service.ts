/**
 * The Receive service: one TCP listener per distinct binding of the enabled Receive connectors,
 * with its own accept path. Each accepted connection is given to the connector chosen by
 * policy/connector-select (binding, then the most specific remote range), whose smtp-server
 * instance runs the session.
 *
 * Listeners: a wildcard binding (0.0.0.0:25, [::]:25) serves every address of its family on that
 * port, so specific bindings on the same port share it (selection still sees the real local
 * address). IPv6 listeners are ipv6Only, so 0.0.0.0:25 and [::]:25 can coexist. Port 0 (tests)
 * binds an ephemeral port; address() reports the real one.
 *
 * Promises: start() binds everything or nothing (an error names the binding). reload() swaps the
 * connector snapshot for new sessions and opens/closes listeners whose bindings changed; sessions
 * in flight finish under the rules they started with. stop(graceMs) stops listening, refuses new
 * commands with 421 4.3.2, waits for sessions up to graceMs, then closes the rest with
 * `421 4.3.2 Service shutting down`.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import type { Config, ReceiveConnector } from '../config/defaults.js';
import type { Intake } from '../model/intake.js';
import type { ProtocolLogSink } from '../model/protocol.js';
import { formatReply } from '../model/reply.js';
import { parseIp, formatEndpoint } from '../model/ip-range.js';
import { listenerSpecs, type ListenerSpec } from '../policy/bindings.js';
import { selectConnector, type ConnectorSelection } from '../policy/connector-select.js';
import { REPLIES } from '../policy/replies.js';
import type { MailyardConnection } from './connection.js';
import { ConnectorRuntime, type ReceiveDeps, type ReceiveTls } from './connector.js';
import { SharedLimits } from './limits.js';

export type ReceiveServiceDeps = ReceiveDeps;

export interface BoundEndpoint {
  /** The binding as configured, e.g. "127.0.0.1:0". */
  readonly binding: string;
  readonly address: string;
  /** The port actually bound. */
  readonly port: number;
}

const SELECTION_CACHE_SIZE = 4096;

interface CachedSelection {
  readonly localAddr: string;
  readonly remoteAddr: string;
  readonly sel: ConnectorSelection<ReceiveConnector>;
}

interface Listener {
  readonly spec: ListenerSpec;
  readonly server: net.Server;
  actualPort: number;
}

export class ReceiveService {
  #config: Config;
  #runtimes = new Map<string, ConnectorRuntime>();
  #selections = new Map<string, CachedSelection>();
  #selectionsFor: Map<string, ConnectorRuntime> | undefined;
  readonly #listeners = new Map<string, Listener>();
  readonly #live = new Set<MailyardConnection>();
  readonly #pending = new Set<net.Socket>();
  readonly #shared = new SharedLimits();
  readonly #logger: Logger;
  #stopping = false;
  #warned = new Set<string>();
  #tls: ReceiveServiceDeps['tls'];

  constructor(private readonly deps: ReceiveServiceDeps) {
    this.#config = deps.config;
    this.#tls = deps.tls;
    this.#logger = deps.logger.child({ component: 'receive' });
    this.#buildRuntimes(deps.config);
  }

  #buildRuntimes(config: Config): void {
    const next = new Map<string, ConnectorRuntime>();
    for (const c of config.receiveConnectors) {
      if (!c.enabled) continue;
      if (c.tlsMode === 'implicit' && !this.#tls) {
        throw new Error(`Receive connector "${c.name}": tlsMode implicit needs a certificate (tls.certFile and tls.keyFile)`);
      }
      const rt = new ConnectorRuntime(c, { ...this.deps, tls: this.#tls, config, shared: this.#shared });
      if ((c.authMechanism.includes('Tls') || c.requireTLS) && c.tlsMode === 'starttls' && !this.#tls && !this.#warned.has(c.name)) {
        this.#warned.add(c.name);
        this.#logger.warn({ code: 'RECEIVE_NO_CERTIFICATE', connector: c.name }, 'no TLS certificate configured: STARTTLS is not offered on this connector');
      }
      next.set(c.name, rt);
    }
    this.#runtimes = next;
  }

  /** Binds every listener; on any failure closes what was opened and rejects naming the binding. */
  async start(): Promise<void> {
    const opened: Listener[] = [];
    try {
      for (const spec of listenerSpecs(this.#config.receiveConnectors)) {
        const l = await this.#listenOrSkip(spec);
        if (l) opened.push(l);
      }
    } catch (err) {
      await Promise.all(opened.map((l) => this.#closeListener(l)));
      throw err;
    }
    for (const l of opened) this.#listeners.set(l.spec.key, l);
    this.#logger.info({ code: 'RECEIVE_STARTED', listeners: this.address() }, 'Receive connectors listening');
  }

  /**
   * Like #listen, but an IPv6 wildcard or loopback binding on a host without IPv6 ([::]:25 and
   * [::1]:2525 in the default connectors) is skipped with a warning instead of failing the start.
   */
  async #listenOrSkip(spec: ListenerSpec): Promise<Listener | undefined> {
    try {
      return await this.#listen(spec);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (spec.family === 6 && (spec.host === '::' || spec.host === '::1') && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) {
        this.#logger.warn({ code: 'RECEIVE_NO_IPV6', bindings: spec.bindings }, 'IPv6 is not available on this host; skipping this IPv6 binding');
        return undefined;
      }
      throw err;
    }
  }

  #listen(spec: ListenerSpec): Promise<Listener> {
    // noDelay: SMTP is request/reply; with Nagle on, a reply written in two pieces waits for the
    // client's delayed ACK (up to 40 ms per step).
    const server = net.createServer({ pauseOnConnect: false, noDelay: true }, (socket) => this.#onSocket(listener, socket));
    const listener: Listener = { spec, server, actualPort: spec.port };
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        server.close();
        const what = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
        reject(Object.assign(new Error(`cannot listen on ${spec.bindings.join(', ')} (${formatEndpoint(spec.host, spec.port)}): ${what}`, { cause: err }), { code: err.code }));
      };
      server.once('error', onError);
      server.listen({ host: spec.host, port: spec.port, ipv6Only: spec.family === 6, exclusive: true }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.#logger.error({ code: 'RECEIVE_LISTENER_ERROR', err, listener: spec.key }, 'listener error'));
        const a = server.address();
        listener.actualPort = typeof a === 'object' && a ? a.port : spec.port;
        resolve(listener);
      });
    });
  }

  #closeListener(l: Listener): Promise<void> {
    return new Promise((resolve) => l.server.close(() => resolve()));
  }

  /**
   * The connector for a (local endpoint, client address) pair. Selection is pure and depends only
   * on the connector set, so answers are remembered until the next reload (bounded: a busy
   * Internet-facing server sees many clients).
   */
  #select(listener: Listener, rawLocal: string, rawRemote: string): CachedSelection {
    if (this.#selectionsFor !== this.#runtimes) {
      this.#selections.clear();
      this.#selectionsFor = this.#runtimes;
    }
    const key = `${rawLocal}|${listener.spec.port}|${rawRemote}`;
    let hit = this.#selections.get(key);
    if (!hit) {
      const localAddr = parseIp(rawLocal)?.text ?? rawLocal;
      const remoteAddr = parseIp(rawRemote)?.text ?? rawRemote;
      const sel = selectConnector([...this.#runtimes.values()].map((r) => r.connector), { address: localAddr, port: listener.spec.port }, remoteAddr);
      hit = { localAddr, remoteAddr, sel };
      if (this.#selections.size >= SELECTION_CACHE_SIZE) this.#selections.clear();
      this.#selections.set(key, hit);
    }
    return hit;
  }

  #onSocket(listener: Listener, socket: net.Socket): void {
    socket.on('error', () => {});
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    // A listener on one address knows its local endpoint; only a wildcard one must ask the socket.
    const { wildcard, host } = listener.spec;
    const rawLocal = wildcard ? (socket.localAddress ?? '') : host;
    const localPort = wildcard ? (socket.localPort ?? listener.actualPort) : listener.actualPort;
    const { localAddr, remoteAddr, sel } = this.#select(listener, rawLocal, socket.remoteAddress ?? '');
    if (sel.kind === 'refused') {
      this.#logger.info({ code: 'RECEIVE_NO_CONNECTOR', local: localAddr, remote: remoteAddr, reason: sel.reason }, 'connection refused: no Receive connector');
      socket.end(`${formatReply(REPLIES.noConnector)}\r\n`);
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    const rt = this.#runtimes.get(sel.connector.name)!;
    const release = this.#shared.open(rt.connector.name, remoteAddr);
    this.#pending.add(socket);
    let done = false;
    const onClosed = (c: MailyardConnection | undefined) => {
      if (done) return;
      done = true;
      release();
      this.#pending.delete(socket);
      if (c) this.#live.delete(c);
    };
    rt.accept(socket, { address: localAddr, port: localPort }, { address: remoteAddr, port: socket.remotePort ?? 0 }, {
      opened: (c) => {
        if (!done) this.#live.add(c);
        if (this.#stopping) c.startDraining();
      },
      closed: (c) => onClosed(c),
    });
  }

  /**
   * New sessions use the new config (and the new certificate when `tls` is given; null removes
   * it); listeners follow the new bindings; sessions in flight keep going.
   */
  async reload(config: Config, tls?: ReceiveTls | null): Promise<void> {
    const old = this.#config;
    const oldRuntimes = this.#runtimes;
    const oldTls = this.#tls;
    this.#config = config;
    if (tls !== undefined) this.#tls = tls ?? undefined;
    const restore = () => {
      this.#config = old;
      this.#runtimes = oldRuntimes;
      this.#tls = oldTls;
    };
    try {
      this.#buildRuntimes(config);
    } catch (err) {
      restore();
      throw err;
    }
    const wanted = new Map(listenerSpecs(config.receiveConnectors).map((s) => [s.key, s]));
    const opened: Listener[] = [];
    try {
      for (const [key, spec] of wanted) {
        if (this.#listeners.has(key)) continue;
        const l = await this.#listenOrSkip(spec);
        if (l) opened.push(l);
      }
    } catch (err) {
      await Promise.all(opened.map((l) => this.#closeListener(l)));
      restore();
      throw err;
    }
    for (const l of opened) this.#listeners.set(l.spec.key, l);
    for (const [key, l] of [...this.#listeners]) {
      if (!wanted.has(key)) {
        this.#listeners.delete(key);
        void this.#closeListener(l);
      } else {
        l.spec.bindings.splice(0, l.spec.bindings.length, ...wanted.get(key)!.bindings);
      }
    }
    this.#logger.info({ code: 'RECEIVE_RELOADED', listeners: this.address() }, 'Receive connectors reloaded');
  }

  /** The endpoints actually bound (one per configured binding). */
  address(): BoundEndpoint[] {
    const out: BoundEndpoint[] = [];
    for (const l of this.#listeners.values()) for (const b of l.spec.bindings) out.push({ binding: b, address: l.spec.host, port: l.actualPort });
    return out;
  }

  /** Sessions currently open. */
  get sessionCount(): number {
    return this.#live.size;
  }

  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    const closing = [...this.#listeners.values()].map((l) => this.#closeListener(l));
    this.#listeners.clear();
    for (const c of this.#live) c.startDraining();
    const deadline = Date.now() + Math.max(0, graceMs);
    while (this.#live.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
    for (const c of this.#live) c.sendReply(REPLIES.shuttingDown);
    const hard = Date.now() + 2000;
    while ((this.#live.size > 0 || this.#pending.size > 0) && Date.now() < hard) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.#live) c._socket.destroy();
    for (const s of this.#pending) s.destroy();
    await Promise.all(closing);
    this.#logger.info({ code: 'RECEIVE_STOPPED' }, 'Receive connectors stopped');
  }
}
