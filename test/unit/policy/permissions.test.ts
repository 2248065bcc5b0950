import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPermissions, permissionsFor, type Principal, type PermissionSubject } from '../../../src/policy/permissions.js';

const conn = (permissionGroups: PermissionSubject['permissionGroups'], authMechanism: PermissionSubject['authMechanism'] = ['Tls'], permissions: string[] = []): PermissionSubject => ({
  permissionGroups,
  authMechanism,
  permissions,
});
const anon: Principal = { kind: 'anonymous' };
const user: Principal = { kind: 'user', user: 'ann@contoso.com' };
const server: Principal = { kind: 'server' };
const partner: Principal = { kind: 'partner' };

describe('permissionsFor (reference table 2.5)', () => {
  const cases: Array<{ title: string; connector: PermissionSubject; principal: Principal; expect: string }> = [
    { title: 'AnonymousUsers grants anonymous sessions submit, any sender, authoritative sender and routing headers', connector: conn(['AnonymousUsers']), principal: anon, expect: 'SMTPSubmit SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender AcceptRoutingHeaders' },
    { title: 'AnonymousUsers grants nothing extra to an authenticated user', connector: conn(['AnonymousUsers']), principal: user, expect: '' },
    { title: 'ExchangeUsers grants authenticated users relay', connector: conn(['ExchangeUsers']), principal: user, expect: 'SMTPSubmit SMTPAcceptAnyRecipient BypassAntiSpam AcceptRoutingHeaders' },
    { title: 'ExchangeUsers grants anonymous sessions nothing', connector: conn(['ExchangeUsers']), principal: anon, expect: '' },
    {
      title: 'ExchangeServers grants an organization server everything, headers included',
      connector: conn(['ExchangeServers']), principal: server,
      expect: 'SMTPSubmit SMTPAcceptAnyRecipient SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender SMTPAcceptAuthenticationFlag BypassAntiSpam BypassMessageSizeLimit AcceptRoutingHeaders AcceptOrganizationHeaders AcceptForestHeaders',
    },
    {
      title: 'on an ExternalAuthoritative connector every session is externally secured (no org/forest headers)',
      connector: conn(['ExchangeServers'], ['ExternalAuthoritative', 'Tls']), principal: anon,
      expect: 'SMTPSubmit SMTPAcceptAnyRecipient SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender SMTPAcceptAuthenticationFlag BypassAntiSpam BypassMessageSizeLimit AcceptRoutingHeaders',
    },
    { title: 'ExchangeServers grants anonymous sessions nothing on an ordinary connector', connector: conn(['ExchangeServers']), principal: anon, expect: '' },
    { title: 'Partners grants a partner submit and routing headers', connector: conn(['Partners']), principal: partner, expect: 'SMTPSubmit AcceptRoutingHeaders' },
    { title: 'Custom grants nothing by itself', connector: conn(['Custom']), principal: anon, expect: '' },
    { title: 'None grants nothing', connector: conn(['None']), principal: user, expect: '' },
    { title: 'extra permissions go to every session, in any spelling', connector: conn(['Custom'], ['Tls'], ['SMTPSubmit', 'AcceptAnyRecipient', 'ms-Exch-Bypass-Message-Size-Limit']), principal: anon, expect: 'SMTPSubmit SMTPAcceptAnyRecipient BypassMessageSizeLimit' },
    { title: 'groups are a union', connector: conn(['AnonymousUsers', 'ExchangeUsers']), principal: user, expect: 'SMTPSubmit SMTPAcceptAnyRecipient BypassAntiSpam AcceptRoutingHeaders' },
    { title: 'the classic anonymous relay: AnonymousUsers plus AcceptAnyRecipient', connector: conn(['AnonymousUsers'], ['Tls'], ['SMTPAcceptAnyRecipient']), principal: anon, expect: 'SMTPSubmit SMTPAcceptAnyRecipient SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender AcceptRoutingHeaders' },
  ];
  for (const t of cases) {
    test(t.title, () => assert.equal(formatPermissions(permissionsFor(t.connector, t.principal)), t.expect));
  }
});
