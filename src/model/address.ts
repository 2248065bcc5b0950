/**
 * Mail addresses as the transport sees them: a local part and a domain, or the null sender.
 * Domains are compared in lower case; local parts are kept as given (RFC 5321 says they may be
 * case-sensitive) but matched case-insensitively where Exchange does (accepted domains, users).
 */

export interface MailAddress {
  readonly local: string;
  readonly domain: string; // lower case, without brackets for address literals
  readonly literal: boolean; // user@[192.0.2.1]
}

/** Splits "local@domain" at the last "@"; returns undefined when there is no usable domain. */
export function parseAddress(address: string): MailAddress | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  const local = address.slice(0, at);
  let domain = address.slice(at + 1).toLowerCase();
  let literal = false;
  if (domain.startsWith('[') && domain.endsWith(']')) {
    domain = domain.slice(1, -1).replace(/^ipv6:/, '');
    literal = true;
  } else if (domain.endsWith('.')) {
    domain = domain.slice(0, -1);
  }
  if (!domain) return undefined;
  return { local, domain, literal };
}

export function domainOf(address: string): string | undefined {
  return parseAddress(address)?.domain;
}

/** The address with its domain lower-cased: the form used as a key for users and recipients. */
export function normalizeAddress(address: string): string {
  const a = parseAddress(address);
  return a ? `${a.local}@${a.literal ? `[${a.domain}]` : a.domain}` : address;
}
