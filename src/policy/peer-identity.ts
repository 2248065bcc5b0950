/**
 * Who a TLS client is, from a client certificate that chained to our CA (tls.caFile): an
 * organization server when a certificate name equals the fqdn of one of organization.servers
 * (principal `server`, permission group ExchangeServers), else a Domain Secure partner when the
 * connector has domainSecureEnabled and a certificate name is in, or under, a domain of
 * transportService.tlsReceiveDomainSecureList (principal `partner`). Source addresses alone never
 * make a server (reference 11). Pure.
 */
import type { PrincipalKind } from './permissions.js';

export interface PeerIdentityInput {
  /** DNS names of the verified client certificate (subjectAltName DNS entries, else the CN). */
  readonly names: readonly string[];
  readonly organizationServers: readonly { readonly fqdn: string }[];
  readonly domainSecureEnabled: boolean;
  readonly domainSecureList: readonly string[];
}

const norm = (s: string) => s.trim().toLowerCase().replace(/\.$/, '');

export function principalFromCertificate(i: PeerIdentityInput): { kind: PrincipalKind; name: string } | undefined {
  const names = i.names.map(norm).filter(Boolean);
  for (const n of names) if (i.organizationServers.some((s) => norm(s.fqdn) === n)) return { kind: 'server', name: n };
  if (i.domainSecureEnabled) {
    for (const n of names) {
      const d = i.domainSecureList.map(norm).find((dom) => n === dom || n.endsWith(`.${dom}`));
      if (d) return { kind: 'partner', name: n };
    }
  }
  return undefined;
}

/** The DNS names of a certificate as node:tls reports it (subjectaltname "DNS:a, DNS:b", subject.CN). */
export function certificateNames(cert: { subjectaltname?: string; subject?: { CN?: string | string[] } } | undefined): string[] {
  if (!cert) return [];
  const san = (cert.subjectaltname ?? '')
    .split(/,\s*/)
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4));
  if (san.length) return san;
  const cn = cert.subject?.CN;
  return Array.isArray(cn) ? cn : cn ? [cn] : [];
}
