/**
 * Receive permission names as administrators may write them: Exchange's protocol-log spelling
 * (`SMTPAcceptAnyRecipient`), the same without the `SMTP` prefix (`AcceptAnyRecipient`, as in the
 * contract's example) and the Active Directory right (`ms-Exch-SMTP-Accept-Any-Recipient`), in any
 * letter case. `normalizePermission` returns the log spelling, which is what policy code and the
 * protocol log use. Pure.
 */
import { RECEIVE_PERMISSIONS, type ReceivePermission } from './schema.js';

/** The Active Directory extended right behind each permission (reference 2.6). */
export const PERMISSION_AD_NAMES: Readonly<Record<ReceivePermission, string>> = {
  SMTPSubmit: 'ms-Exch-SMTP-Submit',
  SMTPAcceptAnyRecipient: 'ms-Exch-SMTP-Accept-Any-Recipient',
  SMTPAcceptAnySender: 'ms-Exch-SMTP-Accept-Any-Sender',
  SMTPAcceptAuthoritativeDomainSender: 'ms-Exch-SMTP-Accept-Authoritative-Domain-Sender',
  SMTPAcceptAuthenticationFlag: 'ms-Exch-SMTP-Accept-Authentication-Flag',
  BypassAntiSpam: 'ms-Exch-Bypass-Anti-Spam',
  BypassMessageSizeLimit: 'ms-Exch-Bypass-Message-Size-Limit',
  AcceptRoutingHeaders: 'ms-Exch-Accept-Headers-Routing',
  AcceptOrganizationHeaders: 'ms-Exch-Accept-Headers-Organization',
  AcceptForestHeaders: 'ms-Exch-Accept-Headers-Forest',
};

const fold = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

const ALIASES: ReadonlyMap<string, ReceivePermission> = (() => {
  const m = new Map<string, ReceivePermission>();
  for (const p of RECEIVE_PERMISSIONS) {
    m.set(fold(p), p);
    if (p.startsWith('SMTP')) m.set(fold(p.slice(4)), p);
    m.set(fold(PERMISSION_AD_NAMES[p]), p);
  }
  return m;
})();

/** The log spelling of a permission name, or undefined when it names no supported permission. */
export function normalizePermission(name: string): ReceivePermission | undefined {
  return ALIASES.get(fold(name));
}

/** Every spelling accepted, for "did you mean" suggestions. */
export function permissionSpellings(): string[] {
  return [...RECEIVE_PERMISSIONS, ...RECEIVE_PERMISSIONS.map((p) => PERMISSION_AD_NAMES[p])];
}
