/**
 * A raw-TCP SMTP line client for tests: send exact bytes (bare LF, NUL, pipelined commands in one
 * packet), read replies (multi-line aware), upgrade to TLS in place. Every read has a deadline.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  readonly code: number;
  readonly lines: readonly string[];
  /** All lines joined with "\n", each without the "250-" prefix. */
  readonly text: string;
  /** The whole reply as received, lines joined with "\n". */
  readonly raw: string;
}

export class LineClient {
  #socket: net.Socket | tls.TLSSocket;
  #buf = '';
  #waiters: Array<() => void> = [];
  #closed = false;

  private constructor(socket: net.Socket | tls.TLSSocket) {
    this.#socket = socket;
    this.#attach(socket);
  }

  #attach(socket: net.Socket | tls.TLSSocket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.#buf += d;
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  static connect(port: number, opts: { host?: string; localAddress?: string; tls?: boolean } = {}): Promise<LineClient> {
    const host = opts.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const s = opts.tls
        ? tls.connect({ host, port, rejectUnauthorized: false, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) })
        : net.connect({ host, port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
      const ev = opts.tls ? 'secureConnect' : 'connect';
      s.once(ev, () => {
        s.off('error', reject);
        resolve(new LineClient(s));
      });
      s.once('error', reject);
    });
  }

  get socket(): net.Socket | tls.TLSSocket {
    return this.#socket;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Writes raw bytes (nothing is added). */
  write(data: string | Buffer): void {
    this.#socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Writes a line with CRLF. */
  send(line: string): void {
    this.write(`${line}\r\n`);
  }

  async #waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.#closed && !cond()) throw new Error(`connection closed while waiting for ${what}; buffer: ${JSON.stringify(this.#buf)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; buffer: ${JSON.stringify(this.#buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Reads one complete reply. */
  async read(timeoutMs = 5000): Promise<Reply> {
    let end = -1;
    await this.#waitFor(
      () => {
        const re = /^(\d{3}) .*$/m;
        const m = re.exec(this.#buf);
        if (!m) return false;
        const nl = this.#buf.indexOf('\n', m.index);
        if (nl < 0) return false;
        end = nl + 1;
        return true;
      },
      timeoutMs,
      'a reply',
    );
    const chunk = this.#buf.slice(0, end);
    this.#buf = this.#buf.slice(end);
    const lines = chunk.split(/\r?\n/).filter((l) => l.length > 0);
    return { code: Number(lines[lines.length - 1]!.slice(0, 3)), lines, text: lines.map((l) => l.slice(4)).join('\n'), raw: lines.join('\n') };
  }

  /** Sends a command and reads its reply. */
  async cmd(line: string, timeoutMs = 5000): Promise<Reply> {
    this.send(line);
    return this.read(timeoutMs);
  }

  /** STARTTLS on this connection (after a 220): the socket is wrapped in place. */
  async upgrade(options: tls.ConnectionOptions = {}): Promise<void> {
    const plain = this.#socket as net.Socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false, ...options });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.#socket = secure;
    this.#attach(secure);
  }

  /** The server's certificate once upgrade() has run. */
  peerCertificate(): tls.PeerCertificate | undefined {
    return this.#socket instanceof tls.TLSSocket ? this.#socket.getPeerCertificate() : undefined;
  }

  /** Resolves when the server has closed the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.#waitFor(() => this.#closed, timeoutMs, 'the connection to close');
  }

  /** Whatever arrived and was not read as a reply. */
  get pending(): string {
    return this.#buf;
  }

  close(): void {
    this.#socket.destroy();
  }
}
