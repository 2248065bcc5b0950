/**
 * Header text the Receive connector adds, pure: our Received field in RFC 5321's form (with the
 * TLS version and cipher when TLS was used, and the authenticated user only where the connector
 * says so), RFC 5322 dates, and the Message-ID / Date fields added to authenticated submissions
 * that lack them. Time and randomness are parameters.
 */
import type { TlsInfo } from '../model/envelope.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "Tue, 5 Mar 2024 09:14:07 +0000" (always UTC). */
export function rfc5322Date(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

export interface ReceivedInput {
  readonly helo: string;
  readonly clientHostname?: string;
  readonly clientIp: string;
  readonly serverFqdn: string;
  readonly esmtp: boolean;
  readonly tls?: TlsInfo;
  readonly authUser?: string;
  readonly showAuthUser: boolean;
  readonly id: string;
  /** Named in a "for" clause only when the message has exactly one recipient. */
  readonly recipients: readonly string[];
  readonly date: Date;
}

/** RFC 3848 protocol names: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA. */
export function withProtocol(esmtp: boolean, tls: boolean, auth: boolean): string {
  if (!esmtp) return 'SMTP';
  return `ESMTP${tls ? 'S' : ''}${auth ? 'A' : ''}`;
}

const clean = (s: string) => s.replace(/[\r\n\t()]/g, ' ').replace(/\s+/g, ' ').trim();

/** The Received field, folded, ending in CRLF. */
export function receivedHeader(i: ReceivedInput): string {
  const ipLiteral = i.clientIp.includes(':') ? `[IPv6:${i.clientIp}]` : `[${i.clientIp}]`;
  const tcpInfo = i.clientHostname && !i.clientHostname.startsWith('[') ? `${clean(i.clientHostname)} ${ipLiteral}` : ipLiteral;
  const lines = [`Received: from ${clean(i.helo) || ipLiteral} (${tcpInfo})`, `by ${clean(i.serverFqdn)}`];
  let withClause = `with ${withProtocol(i.esmtp, !!i.tls, !!i.authUser)}`;
  if (i.tls) withClause += ` (version=${clean(i.tls.protocol)} cipher=${clean(i.tls.cipher)})`;
  lines.push(withClause);
  if (i.authUser && i.showAuthUser) lines.push(`(authenticated as ${clean(i.authUser)})`);
  lines.push(`id ${i.id}`);
  const only = i.recipients.length === 1 ? i.recipients[0] : undefined;
  const last = `${only ? `for <${clean(only)}>` : ''}`;
  const date = rfc5322Date(i.date);
  if (last) lines.push(`${last}; ${date}`);
  else lines[lines.length - 1] += `; ${date}`;
  return `${lines.join('\r\n\t')}\r\n`;
}

export function messageIdFor(random: string, fqdn: string): string {
  return `<${random}@${fqdn}>`;
}
