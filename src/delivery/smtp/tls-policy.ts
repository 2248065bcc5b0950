/**
 * What TLS a Send connector demands of a next hop, and how a server certificate's names are
 * matched against a domain (RFC 6125). Pure: the connector and the certificate are parameters.
 *
 * Promises:
 * - ignoreStartTls (without requireTLS) → plaintext only;
 * - requireTLS, a validating tlsAuthLevel, or BasicAuthRequireTLS → TLS is required: no TLS, no
 *   delivery (and no credential);
 * - otherwise STARTTLS is opportunistic and any certificate is accepted (encryption only);
 * - DomainValidation matches tlsDomain, or the recipient domain when tlsDomain is unset; a wildcard
 *   is honoured only as the whole left-most label ("*.example.com" matches "mx.example.com", not
 *   "example.com" nor "a.b.example.com"); subjectAltName DNS names win over the CN.
 */
import type { SendConnector } from '../../config/defaults.js';

export interface TlsPolicy {
  readonly mode: 'plaintext' | 'opportunistic' | 'required';
  readonly verify: 'none' | 'chain' | 'domain';
  /** The name the certificate must match when verify is 'domain'. */
  readonly domain?: string;
}

export type TlsPolicyInput = Pick<SendConnector, 'requireTLS' | 'tlsAuthLevel' | 'tlsDomain' | 'ignoreStartTls' | 'smartHostAuthMechanism'>;

export function tlsPolicyFor(c: TlsPolicyInput, recipientDomain: string | undefined): TlsPolicy {
  const verify = c.tlsAuthLevel === 'DomainValidation' ? 'domain' : c.tlsAuthLevel === 'CertificateValidation' ? 'chain' : 'none';
  const required = c.requireTLS || verify !== 'none' || c.smartHostAuthMechanism === 'BasicAuthRequireTLS';
  const mode = required ? 'required' : c.ignoreStartTls ? 'plaintext' : 'opportunistic';
  if (verify === 'domain') {
    const domain = (c.tlsDomain ?? recipientDomain ?? '').toLowerCase().replace(/\.$/, '');
    return { mode, verify, domain };
  }
  return { mode, verify };
}

/** DNS names of a certificate: subjectAltName DNS entries, else the subject CN. */
export function certificateNames(subjectaltname: string | undefined, commonName: string | undefined): string[] {
  const sans = (subjectaltname ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).trim().toLowerCase());
  if (sans.length > 0) return sans;
  return commonName ? [commonName.toLowerCase()] : [];
}

/** RFC 6125 6.4: exact match, or a wildcard standing for exactly the left-most label. */
export function nameMatches(pattern: string, domain: string): boolean {
  const p = pattern.toLowerCase().replace(/\.$/, '');
  const d = domain.toLowerCase().replace(/\.$/, '');
  if (!p || !d) return false;
  if (!p.includes('*')) return p === d;
  if (!p.startsWith('*.')) return false; // partial-label wildcards ("f*.example.com") are not honoured
  const rest = p.slice(2);
  if (rest.includes('*') || rest.split('.').length < 2) return false; // "*.com" is never accepted
  const dot = d.indexOf('.');
  return dot > 0 && d.slice(dot + 1) === rest;
}

export function certificateMatchesDomain(names: readonly string[], domain: string): boolean {
  return names.some((n) => nameMatches(n, domain));
}
