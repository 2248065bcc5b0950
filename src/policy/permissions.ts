/**
 * Receive permissions of a session (reference 2.5 / 2.6 and section 11): the union, over every
 * permission group of the connector that the session's principal belongs to, of that group's
 * grants, plus the connector's own `permissions` list (granted to every session). Names are
 * Exchange's protocol-log spellings (SMTPSubmit, SMTPAcceptAnyRecipient, ...). Pure.
 *
 * Principals without Active Directory:
 *   anonymous          no AUTH                                   -> AnonymousUsers
 *   user               SMTP AUTH against the users file           -> ExchangeUsers
 *   server             an organization server proven by mutual TLS -> ExchangeServers, ExchangeLegacyServers
 *   externallySecured  any session on an ExternalAuthoritative connector -> ExchangeServers minus org/forest headers
 *   partner            mutual TLS with a Domain Secure domain      -> Partners
 * Custom and None grant nothing by themselves.
 */
import { normalizePermission } from '../config/permissions.js';
import { RECEIVE_PERMISSIONS, type AuthMechanism, type PermissionGroup, type ReceivePermission } from '../config/schema.js';

export type Permission = ReceivePermission;
export type PrincipalKind = 'anonymous' | 'user' | 'server' | 'externallySecured' | 'partner';

export interface Principal {
  readonly kind: PrincipalKind;
  readonly user?: string;
}

export interface PermissionSubject {
  readonly permissionGroups: readonly PermissionGroup[];
  readonly authMechanism: readonly AuthMechanism[];
  readonly permissions?: readonly string[];
}

const ANONYMOUS: readonly Permission[] = ['SMTPSubmit', 'SMTPAcceptAnySender', 'SMTPAcceptAuthoritativeDomainSender', 'AcceptRoutingHeaders'];
const USERS: readonly Permission[] = ['SMTPSubmit', 'SMTPAcceptAnyRecipient', 'BypassAntiSpam', 'AcceptRoutingHeaders'];
const SERVERS: readonly Permission[] = [
  'SMTPSubmit',
  'SMTPAcceptAnyRecipient',
  'SMTPAcceptAnySender',
  'SMTPAcceptAuthoritativeDomainSender',
  'SMTPAcceptAuthenticationFlag',
  'BypassAntiSpam',
  'BypassMessageSizeLimit',
  'AcceptRoutingHeaders',
  'AcceptOrganizationHeaders',
  'AcceptForestHeaders',
];
const EXTERNALLY_SECURED: readonly Permission[] = SERVERS.filter((p) => p !== 'AcceptOrganizationHeaders' && p !== 'AcceptForestHeaders');
const LEGACY_SERVERS: readonly Permission[] = EXTERNALLY_SECURED;
const PARTNERS: readonly Permission[] = ['SMTPSubmit', 'AcceptRoutingHeaders'];

/** Reference table 2.5 as data: which principal kinds each group admits, and what it grants them. */
export const GROUP_GRANTS: Readonly<Record<PermissionGroup, ReadonlyArray<{ readonly kind: PrincipalKind; readonly grants: readonly Permission[] }>>> = {
  None: [],
  Custom: [],
  AnonymousUsers: [{ kind: 'anonymous', grants: ANONYMOUS }],
  ExchangeUsers: [{ kind: 'user', grants: USERS }],
  ExchangeServers: [
    { kind: 'server', grants: SERVERS },
    { kind: 'externallySecured', grants: EXTERNALLY_SECURED },
  ],
  ExchangeLegacyServers: [{ kind: 'server', grants: LEGACY_SERVERS }],
  Partners: [{ kind: 'partner', grants: PARTNERS }],
};

/** The session's permissions on this connector. */
export function permissionsFor(connector: PermissionSubject, principal: Principal): ReadonlySet<Permission> {
  const kinds = new Set<PrincipalKind>([principal.kind]);
  // ExternalAuthoritative: every session is also the Externally Secured Servers principal.
  if (connector.authMechanism.includes('ExternalAuthoritative')) kinds.add('externallySecured');
  const out = new Set<Permission>();
  for (const group of connector.permissionGroups) {
    for (const entry of GROUP_GRANTS[group]) {
      if (kinds.has(entry.kind)) for (const p of entry.grants) out.add(p);
    }
  }
  for (const name of connector.permissions ?? []) {
    const p = normalizePermission(name);
    if (p) out.add(p);
  }
  return out;
}

/** Space-separated, in Exchange's canonical order: the data of the `Set Session Permissions` log line. */
export function formatPermissions(perms: ReadonlySet<Permission>): string {
  return RECEIVE_PERMISSIONS.filter((p) => perms.has(p)).join(' ');
}
