/**
 * Verdicts for MAIL FROM and RCPT TO (reference 2.8): each check asks questions of the session's
 * permission set and the connector's limits only, and answers accept or a reply from the
 * catalogue. Fails closed: without a permission that allows it, nothing is relayed. Pure.
 */
import { parseAddress } from '../model/address.js';
import type { SmtpReply } from '../model/reply.js';
import type { AcceptedDomain } from '../config/schema.js';
import { classifyDomain } from './accepted-domains.js';
import type { Permission, PrincipalKind } from './permissions.js';
import { REPLIES } from './replies.js';

export type Verdict = { readonly kind: 'accept' } | { readonly kind: 'reject'; readonly reply: SmtpReply; readonly reason: string };

export const ACCEPT: Verdict = { kind: 'accept' };
const reject = (reply: SmtpReply, reason: string): Verdict => ({ kind: 'reject', reply, reason });

export interface MailFromInput {
  readonly permissions: ReadonlySet<Permission>;
  readonly principal: PrincipalKind;
  readonly tls: boolean;
  readonly requireTLS: boolean;
  /** null = the null sender <>. */
  readonly sender: string | null;
  readonly declaredSize?: number;
  readonly maxMessageSize: number;
  readonly acceptedDomains: readonly Pick<AcceptedDomain, 'domainName' | 'domainType'>[];
  /** The login of an authenticated user session (send-as check). */
  readonly authUser?: string;
}

export function checkMailFrom(i: MailFromInput): Verdict {
  if (i.requireTLS && !i.tls) return reject(REPLIES.requireTls, 'connector requires TLS and the session has not started it');
  if (!i.permissions.has('SMTPSubmit')) {
    return i.principal === 'anonymous'
      ? reject(REPLIES.notAuthenticated, 'anonymous session lacks SMTPSubmit')
      : reject(REPLIES.noSubmitPermission, `${i.principal} session lacks SMTPSubmit`);
  }
  if (i.declaredSize !== undefined && i.declaredSize > i.maxMessageSize && !i.permissions.has('BypassMessageSizeLimit')) {
    return reject(REPLIES.messageTooBig, `SIZE=${i.declaredSize} exceeds maxMessageSize ${i.maxMessageSize}`);
  }
  if (i.sender !== null && i.principal === 'anonymous' && !i.permissions.has('SMTPAcceptAuthoritativeDomainSender')) {
    const a = parseAddress(i.sender);
    const match = a ? classifyDomain(i.acceptedDomains, a.domain) : undefined;
    if (match?.domainType === 'Authoritative') {
      return reject(REPLIES.sendAsDenied, `anonymous sender in Authoritative domain ${match.domainName} without SMTPAcceptAuthoritativeDomainSender`);
    }
  }
  // Authenticated users without SMTPAcceptAnySender may only send as themselves (reference 2.6).
  if (i.sender !== null && i.principal === 'user' && i.authUser && !i.permissions.has('SMTPAcceptAnySender')) {
    if (i.sender.toLowerCase() !== i.authUser.toLowerCase()) return reject(REPLIES.sendAsDenied, `${i.authUser} may not send as ${i.sender}`);
  }
  return ACCEPT;
}

export interface RcptInput {
  readonly permissions: ReadonlySet<Permission>;
  readonly recipient: string;
  /** Recipients already accepted in this transaction. */
  readonly accepted: number;
  readonly maxRecipientsPerMessage: number;
  readonly acceptedDomains: readonly Pick<AcceptedDomain, 'domainName' | 'domainType'>[];
  readonly rejectReservedTopLevelRecipientDomains?: boolean;
  readonly rejectReservedSecondLevelRecipientDomains?: boolean;
  readonly rejectSingleLabelRecipientDomains?: boolean;
}

const RESERVED_TLDS = new Set(['test', 'example', 'invalid', 'localhost']);
const RESERVED_SLDS = new Set(['example.com', 'example.net', 'example.org']);

export function checkRcpt(i: RcptInput): Verdict {
  if (i.accepted >= i.maxRecipientsPerMessage) return reject(REPLIES.tooManyRecipients, `maxRecipientsPerMessage ${i.maxRecipientsPerMessage} reached`);
  const a = parseAddress(i.recipient);
  // "postmaster" without a domain must be accepted (RFC 5321 4.1.1.3): it is ours.
  if (!a) {
    if (i.recipient.toLowerCase() === 'postmaster') return ACCEPT;
    return reject(REPLIES.invalidRecipient, `recipient "${i.recipient}" has no domain`);
  }
  if (!a.literal) {
    const labels = a.domain.split('.');
    const tld = labels[labels.length - 1]!;
    if (i.rejectSingleLabelRecipientDomains && labels.length === 1) return reject(REPLIES.singleLabelDomain, `single-label domain ${a.domain}`);
    if (i.rejectReservedTopLevelRecipientDomains && RESERVED_TLDS.has(tld)) return reject(REPLIES.reservedTopLevel, `reserved top-level domain .${tld}`);
    if (i.rejectReservedSecondLevelRecipientDomains && RESERVED_SLDS.has(labels.slice(-2).join('.'))) {
      return reject(REPLIES.reservedSecondLevel, `reserved second-level domain ${a.domain}`);
    }
  }
  if (i.permissions.has('SMTPAcceptAnyRecipient')) return ACCEPT;
  const match = a.literal ? undefined : classifyDomain(i.acceptedDomains, a.domain);
  if (!match) return reject(REPLIES.relayDenied, `${a.domain} is not an accepted domain and the session lacks SMTPAcceptAnyRecipient`);
  return ACCEPT;
}
