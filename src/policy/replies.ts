/**
 * The catalogue of SMTP replies a Receive connector sends for its own decisions (CONTRACT.md
 * "SMTP replies for the common refusals" and reference section 10). Every refusal in policy/ and
 * receive/ comes from here, so the wording is kept in one place. Client texts name no internal
 * detail; the reason goes to the log instead. Pure data.
 */
import { reply, type SmtpReply } from '../model/reply.js';

export const REPLIES = {
  // Connection
  tooManyConnections: reply(421, '4.3.2', 'The maximum number of concurrent server connections has exceeded a limit, closing transmission channel'),
  tooManyConnectionsFromSource: reply(421, '4.3.2', 'The maximum number of concurrent connections has exceeded a limit, closing transmission channel'),
  shuttingDown: reply(421, '4.3.2', 'Service shutting down'),
  noConnector: reply(421, '4.3.2', 'Service not available'),
  tooManyErrors: reply(421, '4.7.0', 'Too many errors on this connection, closing transmission channel'),
  tooManyLogonFailures: reply(421, '4.7.0', 'Too many errors on this connection, closing transmission channel'),
  sessionTimeout: reply(421, '4.4.1', 'Connection timed out'),
  inactivityTimeout: reply(451, '4.7.0', 'Timeout waiting for client input'),
  earlyTalker: reply(554, '5.5.0', 'Protocol error: client sent data before the greeting'),
  rateLimited: reply(421, '4.4.2', 'Message submission rate for this client has exceeded the configured limit'),

  // Generic protocol
  unrecognizedCommand: reply(500, '5.3.3', 'Unrecognized command'),
  lineTooLong: reply(500, '5.5.2', 'Line too long'),
  bareLineFeed: reply(500, '5.5.2', 'Syntax error: command line ends with a bare line feed'),
  nulInCommand: reply(500, '5.5.2', 'Syntax error: command contains a NUL byte'),
  bareCarriageReturn: reply(500, '5.5.2', 'Syntax error: command contains a bare carriage return'),
  sendHelloFirst: reply(503, '5.5.2', 'Send hello first'),
  needMail: reply(503, '5.5.2', 'Need mail command'),
  needRcpt: reply(503, '5.5.2', 'Need rcpt command'),
  senderAlreadySpecified: reply(503, '5.5.2', 'Sender already specified'),
  invalidDomainName: reply(501, '5.5.4', 'Invalid domain name'),
  syntaxError: reply(501, '5.5.4', 'Syntax error in parameters or arguments'),
  tlsAlreadyActive: reply(503, '5.5.1', 'TLS already active'),
  invalidSender: reply(501, '5.1.7', 'Invalid address'),
  invalidRecipient: reply(501, '5.1.3', 'Invalid address'),
  helloDomainRequired: reply(501, '5.5.4', 'Invalid domain name'),

  // Positive replies
  senderOk: reply(250, '2.1.0', 'Sender OK'),
  recipientOk: reply(250, '2.1.5', 'Recipient OK'),
  startData: reply(354, undefined, 'Start mail input; end with <CRLF>.<CRLF>'),
  startTls: reply(220, '2.0.0', 'SMTP server ready'),
  closing: reply(221, '2.0.0', 'Service closing transmission channel'),
  resetting: reply(250, '2.0.0', 'Resetting'),
  ok: reply(250, '2.0.0', 'OK'),
  cannotVrfy: reply(252, '2.1.5', 'Cannot VRFY user'),
  authOk: reply(235, '2.7.0', 'Authentication successful'),

  // MAIL FROM
  requireTls: reply(530, '5.7.10', 'Must issue a STARTTLS command first'),
  notAuthenticated: reply(530, '5.7.1', 'Client was not authenticated'),
  noSubmitPermission: reply(550, '5.7.1', 'Client does not have permissions to submit to this server'),
  sendAsDenied: reply(550, '5.7.1', 'Client does not have permissions to send as this sender'),
  messageTooBig: reply(552, '5.3.4', 'Message size exceeds fixed maximum message size'),

  // RCPT TO
  tooManyRecipients: reply(452, '4.5.3', 'Too many recipients'),
  relayDenied: reply(550, '5.7.54', 'SMTP; Unable to relay recipient in non-accepted domain'),
  userUnknown: reply(550, '5.1.1', 'User unknown'),
  reservedTopLevel: reply(550, '5.1.4', 'Recipient address reserved by RFC 2606'),
  reservedSecondLevel: reply(550, '5.1.5', 'Recipient address reserved by RFC 2606'),
  singleLabelDomain: reply(550, '5.1.6', 'Recipient addresses in single label domains not accepted'),
  lookupFailed: reply(451, '4.3.0', 'Temporary failure looking up the recipient'),

  // DATA
  headerTooBig: reply(552, '5.3.4', 'Header size exceeds fixed maximum size'),
  hopCountExceeded: reply(554, '5.4.6', 'Hop count exceeded - possible mail loop'),
  bareLineFeedInData: reply(554, '5.6.0', 'Invalid message content, contains bare linefeeds'),
  insufficientResources: reply(452, '4.3.1', 'Insufficient system resources'),
  transactionFailed: reply(451, '4.3.0', 'Message could not be stored, try again later'),
  /** Not a constant: use queued(internetMessageId, id, fqdn). */

  // AUTH
  authNotOffered: reply(504, '5.7.4', 'Unrecognized authentication type'),
  encryptionRequired: reply(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  authFailed: reply(535, '5.7.3', 'Authentication unsuccessful'),
  alreadyAuthenticated: reply(503, '5.5.1', 'Already authenticated'),
  authCancelled: reply(501, '5.0.0', 'Authentication cancelled'),
  authInvalidResponse: reply(501, '5.5.2', 'Cannot decode the authentication response'),
} as const satisfies Record<string, SmtpReply>;

export type ReplyName = keyof typeof REPLIES;

/** 250 after DATA once the message is durably stored (Exchange's wording). */
export function queuedReply(internetMessageId: string | undefined, queueId: string, fqdn: string): SmtpReply {
  const mid = internetMessageId ? `${internetMessageId} ` : '';
  return reply(250, '2.6.0', `${mid}[InternalId=${queueId}, Hostname=${fqdn}] Queued mail for delivery`);
}
