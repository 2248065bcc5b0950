/**
 * Mailbox delivery for recipients of Authoritative domains: picks the Maildir or LMTP agent from
 * `mailboxDelivery.type`, and answers "does this local recipient exist?" for recipientValidation.
 *
 * recipientExists is pure: a local address exists when it (with +detail removed, compared without
 * case) is a user of the users file or the key of an alias. The Receive side calls it at RCPT TO
 * and refuses unknown recipients with 550 5.1.1.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/defaults.js';
import type { DeliveryAgent } from '../model/outcome.js';
import type { ProtocolLogSink } from '../model/protocol.js';
import { aliasKey } from './local-path.js';
import { createLmtpAgent, type LmtpTarget } from './lmtp.js';
import { createMaildirAgent } from './maildir.js';

export { expandAliases } from './local-path.js';

export interface MailboxAgentDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly protocolLog: ProtocolLogSink;
}

/** Name under which mailbox delivery appears in the Delivery protocol log. */
export const MAILBOX_CONNECTOR_NAME = 'Mailbox Delivery';

/** Pure: the LMTP endpoint from an {host, port, socket} block (socket wins; default 127.0.0.1:24). */
export function lmtpTargetOf(lmtp: { host?: string | undefined; port?: number | undefined; socket?: string | undefined } | undefined): LmtpTarget {
  if (lmtp?.socket) return { socket: lmtp.socket };
  return { host: lmtp?.host ?? '127.0.0.1', port: lmtp?.port ?? 24 };
}

export function createMailboxAgent(deps: MailboxAgentDeps): DeliveryAgent {
  const md = deps.config.mailboxDelivery;
  if (md.type === 'lmtp') {
    return createLmtpAgent({
      target: lmtpTargetOf(md.lmtp),
      connectorName: MAILBOX_CONNECTOR_NAME,
      lhloName: deps.config.server.fqdn,
      logger: deps.logger,
      protocolLog: deps.protocolLog,
      maxIdleConnections: Math.min(deps.config.transportService.maxConcurrentMailboxDeliveries, 20),
    });
  }
  return createMaildirAgent({ template: md.maildirRoot, logger: deps.logger, fsync: deps.config.transportService.fsyncEnabled });
}

/**
 * Pure: whether `address` is a known local recipient. `usersAddresses` holds the users file's
 * addresses (any case); aliases come from config.mailboxDelivery.aliases.
 */
export function recipientExists(config: Pick<Config, 'mailboxDelivery'>, usersAddresses: ReadonlySet<string>, address: string): boolean {
  const key = aliasKey(address);
  for (const u of usersAddresses) if (aliasKey(u) === key) return true;
  for (const a of Object.keys(config.mailboxDelivery.aliases)) if (aliasKey(a) === key) return true;
  return false;
}
