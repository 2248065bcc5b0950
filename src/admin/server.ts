/**
 * The admin endpoint: a small HTTP JSON API on server.admin.listen (loopback unless
 * allowNonLoopback) for the queue verbs of `mailyard queue ...` and `/health`. Routes:
 *
 *   GET    /health                         {"status":"ok", ...counts}
 *   GET    /queues                         Get-Queue
 *   GET    /messages[?queue=Q]             Get-Message
 *   GET    /messages/:id                   one message with recipient detail
 *   GET    /messages/:id/export            the message in Replay format (message/rfc822)
 *   POST   /queues/:queue/retry            Retry-Queue (Unreachable: resubmit)
 *   POST   /queues/:queue/suspend|resume   Suspend-Queue / Resume-Queue
 *   POST   /messages/:id/suspend|resume    Suspend-Message / Resume-Message
 *   DELETE /messages/:id[?ndr=true|false]  Remove-Message (also POST /messages/:id/remove)
 *
 * Errors are JSON {"error": {"code", "message"}} with 400/404/409/500. Extra routes (e.g.
 * /metrics, /backpressure) are added by the daemon through `extraRoutes`. No request body is trusted beyond
 * a few KB; nothing here reads spool files directly.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { parseBinding } from '../model/ip-range.js';
import type { MessageInfo, QueueInfo } from '../queue/manager.js';
import { QueueAdminError } from '../queue/manager.js';

/** What the admin API needs from the Transport. */
export interface QueueAdmin {
  listQueues(): QueueInfo[];
  listMessages(queue?: string): MessageInfo[];
  getMessage(id: string): MessageInfo;
  retryQueue(name: string): unknown;
  suspend(target: string): Promise<unknown>;
  resume(target: string): Promise<unknown>;
  remove(id: string, opts: { ndr?: boolean }): Promise<unknown>;
  export(id: string): Promise<Buffer>;
  stats(): Record<string, number>;
}

export type ExtraRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean;

export interface AdminServerOptions {
  readonly listen: string;
  readonly allowNonLoopback: boolean;
  readonly queue: QueueAdmin;
  readonly logger: Logger;
  readonly extraRoutes?: readonly ExtraRoute[];
}

export interface AdminServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1)$/;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function fail(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, { error: { code, message } });
}

async function handle(opts: AdminServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin.local');
  const parts = url.pathname.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  const method = req.method ?? 'GET';
  const q = opts.queue;
  for (const r of opts.extraRoutes ?? []) if (await r(req, res, url)) return;
  try {
    if (method === 'GET' && parts.length === 1 && parts[0] === 'health') return send(res, 200, { status: 'ok', ...q.stats() });
    if (method === 'GET' && parts.length === 1 && parts[0] === 'queues') return send(res, 200, q.listQueues());
    if (parts[0] === 'queues' && parts.length === 3 && method === 'POST') {
      const name = parts[1]!;
      if (parts[2] === 'retry') return send(res, 200, q.retryQueue(name));
      if (parts[2] === 'suspend') return send(res, 200, await q.suspend(name));
      if (parts[2] === 'resume') return send(res, 200, await q.resume(name));
    }
    if (parts[0] === 'messages') {
      if (parts.length === 1 && method === 'GET') return send(res, 200, q.listMessages(url.searchParams.get('queue') ?? undefined));
      const id = parts[1]!;
      if (parts.length === 2 && method === 'GET') return send(res, 200, q.getMessage(id));
      const ndrParam = url.searchParams.get('ndr');
      const ndr = ndrParam === null ? undefined : !/^(false|0|no)$/i.test(ndrParam);
      if ((parts.length === 2 && method === 'DELETE') || (parts.length === 3 && parts[2] === 'remove' && method === 'POST')) {
        return send(res, 200, await q.remove(id, ndr === undefined ? {} : { ndr }));
      }
      if (parts.length === 3 && method === 'POST' && parts[2] === 'suspend') return send(res, 200, await q.suspend(id));
      if (parts.length === 3 && method === 'POST' && parts[2] === 'resume') return send(res, 200, await q.resume(id));
      if (parts.length === 3 && method === 'GET' && parts[2] === 'export') {
        const data = await q.export(id);
        res.writeHead(200, { 'content-type': 'message/rfc822', 'content-length': data.length, 'content-disposition': `attachment; filename="${id}.eml"` });
        res.end(data);
        return;
      }
    }
    fail(res, 404, 'NO_ROUTE', `no admin route ${method} ${url.pathname}`);
  } catch (err) {
    if (err instanceof QueueAdminError) {
      const status = err.code === 'NOT_FOUND' ? 404 : err.code === 'CONFLICT' ? 409 : 400;
      return fail(res, status, err.code, err.message);
    }
    opts.logger.error({ err, url: url.pathname }, 'admin request failed');
    fail(res, 500, 'INTERNAL', (err as Error)?.message ?? 'internal error');
  }
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  // Port 0 (an ephemeral port, for tests) is allowed here although connector bindings refuse it.
  const zero = /^(.*):0$/.exec(opts.listen.trim());
  const b = parseBinding(zero ? `${zero[1]}:1` : opts.listen);
  if ('error' in b) throw new Error(`server.admin.listen: ${b.error}`);
  const port = zero ? 0 : b.port;
  if (!opts.allowNonLoopback && !LOOPBACK.test(b.address)) {
    throw new Error(`server.admin.listen ${opts.listen} is not a loopback address; set server.admin.allowNonLoopback: true to allow it`);
  }
  const server: Server = createServer((req, res) => {
    req.resume();
    void handle(opts, req, res).catch((err: unknown) => {
      opts.logger.error({ err }, 'admin request crashed');
      if (!res.headersSent) fail(res, 500, 'INTERNAL', 'internal error');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, b.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  opts.logger.info({ event: 'admin.listening', address: addr.address, port: addr.port }, `admin API listening on ${addr.address}:${addr.port}`);
  return {
    address: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
