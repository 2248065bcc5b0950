/**
 * `mailyard queue list|messages|retry|suspend|resume|remove|export`: clients of the running
 * daemon's admin endpoint (server.admin.listen). Prints tables (or JSON with --json); exit 0 on
 * success, 1 when the daemon answers with an error or cannot be reached.
 */
import type { Config } from '../config/defaults.js';
import { parseBinding } from '../model/ip-range.js';

export interface QueueOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export interface QueueOptions {
  readonly json?: boolean;
  readonly ndr?: boolean;
  readonly withNdr?: boolean;
}

/** The admin endpoint's base URL; a wildcard listen address is reached over loopback. */
export function adminBaseUrl(config: Config): string {
  const b = parseBinding(config.server.admin.listen);
  if ('error' in b) throw new Error(`server.admin.listen: ${b.error}`);
  const host = b.address === '0.0.0.0' ? '127.0.0.1' : b.address === '::' ? '::1' : b.address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${b.port}`;
}

interface AdminResponse {
  readonly status: number;
  readonly body: Buffer;
  readonly contentType: string;
}

async function call(base: string, method: string, path: string): Promise<AdminResponse> {
  const res = await fetch(`${base}${path}`, { method, signal: AbortSignal.timeout(30_000) });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get('content-type') ?? '' };
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')}\n`;
}

type Json = Record<string, unknown>;

export function formatQueues(queues: readonly Json[]): string {
  return table([
    ['Identity', 'DeliveryType', 'Status', 'MessageCount', 'NextRetryTime', 'LastError'],
    ...queues.map((q) => [String(q.identity), String(q.deliveryType), String(q.status), String(q.messageCount), String(q.nextRetryTime ?? ''), String(q.lastError ?? '')]),
  ]);
}

export function formatMessages(messages: readonly Json[]): string {
  if (!messages.length) return 'no messages\n';
  return table([
    ['Identity', 'FromAddress', 'Status', 'Size', 'Queue', 'Subject'],
    ...messages.map((m) => [String(m.id), String(m.fromAddress), String(m.status), String(m.size), String(m.queue), String(m.subject ?? '')]),
  ]);
}

/** True for a queued message's id (`0123456789ABCDEF0123`, or `EX01\\contoso.com\\<id>`). */
export function isMessageId(arg: string): boolean {
  return /^[0-9a-f]{20}$/i.test(arg.split('\\').pop() ?? '');
}

export async function queueCommand(config: Config, verb: string, args: readonly string[], opts: QueueOptions, out: QueueOutput): Promise<number> {
  let base: string;
  try {
    base = adminBaseUrl(config);
  } catch (err) {
    out.stderr(`mailyard queue: ${(err as Error).message}`);
    return 1;
  }
  const arg = args[0];
  const enc = (s: string) => encodeURIComponent(s);
  let method = 'GET';
  let path: string;
  switch (verb) {
    case 'list':
      path = '/queues';
      break;
    case 'messages':
      path = arg ? `/messages?queue=${enc(arg)}` : '/messages';
      break;
    case 'retry':
      method = 'POST';
      path = `/queues/${enc(arg ?? '')}/retry`;
      break;
    case 'suspend':
    case 'resume':
      // A message id (20 hex digits, optionally as Server\Queue\id) or else a queue identity.
      method = 'POST';
      path = `/${isMessageId(arg ?? '') ? 'messages' : 'queues'}/${enc(arg ?? '')}/${verb}`;
      break;
    case 'remove':
      method = 'DELETE';
      path = `/messages/${enc(arg ?? '')}?ndr=${opts.ndr || opts.withNdr ? 'true' : 'false'}`;
      break;
    case 'export':
      path = `/messages/${enc(arg ?? '')}/export`;
      break;
    default:
      out.stderr(`mailyard queue: unknown verb ${verb}`);
      return 2;
  }
  let res: AdminResponse;
  try {
    res = await call(base, method, path);
  } catch (err) {
    out.stderr(`mailyard queue: cannot reach the admin endpoint at ${base} (is the daemon running?): ${(err as Error).message}`);
    return 1;
  }
  if (res.status >= 400) {
    let msg = res.body.toString('utf8');
    try {
      const j = JSON.parse(msg) as { error?: { message?: string } };
      msg = j.error?.message ?? msg;
    } catch {
      /* plain text */
    }
    out.stderr(`mailyard queue ${verb}: ${msg.trim()}`);
    return 1;
  }
  if (verb === 'export') {
    out.stdout(res.body.toString('utf8'));
    return 0;
  }
  const data = JSON.parse(res.body.toString('utf8')) as unknown;
  if (opts.json) {
    out.stdout(`${JSON.stringify(data, null, 2)}\n`);
    return 0;
  }
  if (verb === 'list') out.stdout(formatQueues(data as Json[]));
  else if (verb === 'messages') out.stdout(formatMessages(data as Json[]));
  else out.stdout(`${Object.entries(data as Json).map(([k, v]) => `${k}: ${String(v)}`).join('\n')}\n`);
  return 0;
}
