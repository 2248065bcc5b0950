/**
 * Delivery Agent connector `http`: each message is POSTed to the connector's URL.
 *
 * Request: `Content-Type: message/rfc822`, the spooled message as the body (streamed, with
 * Content-Length), and the envelope in headers: `X-Mailyard-Sender: <addr>` (`<>` for the null
 * sender), one `X-Mailyard-Recipient: <addr>` per recipient, `X-Mailyard-Recipients` (all of them,
 * comma-separated) and `X-Mailyard-Queue-Id` (stable across retries, for idempotent receivers).
 * Non-ASCII (SMTPUTF8) addresses travel as their raw UTF-8 bytes.
 *
 * Response mapping (the whole batch shares one answer):
 *   2xx → delivered; 408, 429, 5xx, 3xx → deferred; other 4xx → failed with an NDR reply
 *   (413 → 552 5.3.4, 401/403 → 550 5.7.1, otherwise 554 5.6.0); network errors and
 *   `connector.timeout` expiry → deferred (connection failure when nothing was connected).
 * Each exchange is written to the Delivery protocol log.
 */
import { protocolSession } from '../logging/protocol-session.js';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config, EffectiveDeliveryAgentConnector } from '../config/defaults.js';
import type { DeliveryAgent, DeliveryBatch, DeliveryResult, RecipientOutcome } from '../model/outcome.js';
import type { ProtocolLogSink } from '../model/protocol.js';
import { reply, type SmtpReply } from '../model/reply.js';
import { createLmtpAgent } from './lmtp.js';
import { lmtpTargetOf } from './mailbox.js';
import { createMaildirAgent } from './maildir.js';

export interface HttpAgentOptions {
  readonly connectorName: string;
  readonly url: string;
  /** Milliseconds for the whole request (connect, upload, response). */
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly protocolLog: ProtocolLogSink;
  /** protocolLoggingLevel 'None' turns the protocol log off. */
  readonly protocolLogging?: boolean;
  /** Keep-alive sockets to the URL's host (maxConcurrentConnections); default 5. */
  readonly maxConnections?: number;
}

/** Pure: what an HTTP status means for the recipients of the request. */
export function classifyHttpStatus(status: number, statusText: string, bodySnippet: string): RecipientOutcome {
  const said = `HTTP ${status}${statusText ? ` ${statusText}` : ''}${bodySnippet ? `: ${bodySnippet}` : ''}`;
  if (status >= 200 && status < 300) return { kind: 'delivered', reply: reply(250, '2.0.0', `Accepted by the delivery agent (${said})`) };
  if (status === 408 || status === 429 || status >= 500 || (status >= 300 && status < 400) || status < 200) {
    return { kind: 'deferred', category: status >= 500 ? 'other' : 'protocol', reply: reply(451, '4.4.0', `Delivery agent unavailable (${said})`), detail: said };
  }
  let r: SmtpReply;
  if (status === 413) r = reply(552, '5.3.4', `Message too big for the delivery agent (${said})`);
  else if (status === 401 || status === 403) r = reply(550, '5.7.1', `Delivery agent refused the message (${said})`);
  else r = reply(554, '5.6.0', `Delivery agent rejected the message (${said})`);
  return { kind: 'failed', category: 'policy', reply: r, detail: said };
}

/** Header values must be bytes 0x20-0xFF without CR/LF: UTF-8 is sent as its raw bytes. */
function headerSafe(value: string): string {
  return Buffer.from(value.replace(/[\r\n\u0000]/g, ''), 'utf8').toString('latin1');
}

export function createHttpAgent(options: HttpAgentOptions): DeliveryAgent & { close(): Promise<void> } {
  const log = options.logger.child({ component: 'http-agent', connector: options.connectorName });
  const url = new URL(options.url);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  // Connections are reused between messages (keep-alive), at most maxConnections at a time.
  const pool =
    url.protocol === 'https:'
      ? new HttpsAgent({ keepAlive: true, maxSockets: options.maxConnections ?? 5 })
      : new HttpAgent({ keepAlive: true, maxSockets: options.maxConnections ?? 5 });
  const logging = options.protocolLogging ?? true;

  return {
    async deliver(batch: DeliveryBatch, signal: AbortSignal): Promise<DeliveryResult> {
      let contentLength: number;
      try {
        contentLength = (await stat(batch.bodyPath)).size;
      } catch (err) {
        const outcomes = new Map<string, RecipientOutcome>();
        for (const r of batch.recipients) {
          outcomes.set(r.address, { kind: 'deferred', category: 'local-io', reply: reply(451, '4.3.0', 'Spooled message not readable'), detail: String(err) });
        }
        return { outcomes };
      }
      let local = '';
      let remote = `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
      const plog = protocolSession({
        sink: options.protocolLog,
        service: 'Delivery',
        connectorId: options.connectorName,
        enabled: logging,
        endpoints: () => ({ local, remote }),
      });
      const all = (o: RecipientOutcome, connectionFailure = false): DeliveryResult => {
        const outcomes = new Map<string, RecipientOutcome>();
        for (const r of batch.recipients) {
          // The receiving system sends no DSNs: NOTIFY=SUCCESS gets a "relayed" notice.
          const relayed = o.kind === 'delivered' && (r.notify ?? []).includes('SUCCESS');
          outcomes.set(r.address, { ...o, host: url.host, ...(relayed ? { relayed: true } : {}) });
        }
        return connectionFailure ? { outcomes, connectionFailure, session: { host: url.host } } : { outcomes, session: { host: url.host } };
      };

      return new Promise<DeliveryResult>((resolvePromise) => {
        let settled = false;
        let connected = false;
        const finish = (result: DeliveryResult): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          plog('-', '', 'session end');
          resolvePromise(result);
        };
        const fail = (err: Error, why: string): void => {
          if (settled) return;
          log.warn({ messageId: batch.messageId, err: err.message }, `http delivery deferred: ${why}`);
          plog('*', why, 'error');
          finish(all({ kind: 'deferred', category: connected ? 'protocol' : 'connect', reply: reply(451, '4.4.1', `Delivery agent not reachable: ${why}`), detail: err.message }, !connected));
          req.destroy();
        };
        const recipients = batch.recipients.map((r) => r.address);
        const req = request(url, {
          method: 'POST',
          agent: pool,
          headers: {
            'Content-Type': 'message/rfc822',
            'Content-Length': String(contentLength),
            'X-Mailyard-Sender': headerSafe(`<${batch.envelope.mailFrom ?? ''}>`),
            'X-Mailyard-Recipient': recipients.map((a) => headerSafe(`<${a}>`)),
            'X-Mailyard-Recipients': headerSafe(recipients.join(', ')),
            'X-Mailyard-Queue-Id': batch.messageId,
            ...(batch.internetMessageId ? { 'X-Mailyard-Message-Id': headerSafe(batch.internetMessageId) } : {}),
          },
        });
        const timer = setTimeout(() => fail(new Error(`no answer within ${options.timeoutMs} ms`), 'timeout'), options.timeoutMs);
        const onAbort = (): void => fail(new Error('delivery aborted'), 'aborted');
        signal.addEventListener('abort', onAbort, { once: true });
        if (signal.aborted) return onAbort();

        req.on('socket', (socket: Socket) => {
          const onConnect = (): void => {
            connected = true;
            local = `${socket.localAddress ?? ''}:${socket.localPort ?? ''}`;
            remote = `${socket.remoteAddress ?? url.hostname}:${socket.remotePort ?? ''}`;
            plog('+', '', 'session start');
            plog('>', `POST ${url.pathname}${url.search} (${contentLength} bytes, ${recipients.length} recipients)`);
          };
          if (socket.connecting) socket.once('connect', onConnect);
          else onConnect();
        });
        req.on('error', (err) => fail(err, (err as NodeJS.ErrnoException).code ?? err.message));
        req.on('response', (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (c: Buffer) => {
            if (kept < 512) {
              chunks.push(c);
              kept += c.length;
            }
          });
          res.on('error', (err) => fail(err, 'response error'));
          res.on('end', () => {
            const snippet = Buffer.concat(chunks).toString('utf8').slice(0, 200).replace(/[\r\n\t]+/g, ' ').trim();
            plog('<', `HTTP ${status} ${res.statusMessage ?? ''}`.trim(), snippet || undefined);
            const outcome = classifyHttpStatus(status, res.statusMessage ?? '', snippet);
            log.info({ messageId: batch.messageId, status, outcome: outcome.kind }, 'http delivery attempt');
            finish(all(outcome));
          });
        });
        const body = createReadStream(batch.bodyPath);
        body.on('error', (err) => fail(err, 'cannot read the spooled message'));
        body.pipe(req);
      });
    },
    close(): Promise<void> {
      pool.destroy();
      return Promise.resolve();
    },
  };
}

export interface DeliveryAgentConnectorDeps {
  readonly connector: EffectiveDeliveryAgentConnector;
  readonly config: Config;
  readonly logger: Logger;
  readonly protocolLog: ProtocolLogSink;
}

/**
 * The agent behind a Delivery Agent connector, chosen by its deliveryProtocol. The queue applies the
 * connector's maxConcurrentConnections; LMTP reuses a connection for maxMessagesPerConnection.
 */
export function createDeliveryAgentConnectorAgent(deps: DeliveryAgentConnectorDeps): DeliveryAgent {
  const c = deps.connector;
  const logging = c.protocolLoggingLevel !== 'None';
  switch (c.deliveryProtocol) {
    case 'http':
      if (!c.url) throw new Error(`Delivery Agent connector "${c.name}": deliveryProtocol http needs a url`);
      return createHttpAgent({
        connectorName: c.name,
        url: c.url,
        timeoutMs: c.timeout,
        logger: deps.logger,
        protocolLog: deps.protocolLog,
        protocolLogging: logging,
        maxConnections: c.maxConcurrentConnections,
      });
    case 'lmtp':
      return createLmtpAgent({
        target: lmtpTargetOf({ host: c.host, port: c.port, socket: c.socket }),
        connectorName: c.name,
        lhloName: deps.config.server.fqdn,
        logger: deps.logger,
        protocolLog: deps.protocolLog,
        protocolLogging: logging,
        maxMessagesPerConnection: c.maxMessagesPerConnection,
        maxIdleConnections: c.maxConcurrentConnections,
        timeoutMs: c.timeout,
      });
    case 'maildir':
      return createMaildirAgent({ template: c.maildirRoot ?? deps.config.mailboxDelivery.maildirRoot, logger: deps.logger, fsync: deps.config.transportService.fsyncEnabled });
    default: {
      const never: never = c.deliveryProtocol;
      throw new Error(`unknown deliveryProtocol ${String(never)}`);
    }
  }
}
