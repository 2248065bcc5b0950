import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkMailFrom, checkRcpt, type MailFromInput, type RcptInput } from '../../../src/policy/checks.js';
import { classifyDomain } from '../../../src/policy/accepted-domains.js';
import { permissionsFor, type Permission } from '../../../src/policy/permissions.js';
import { formatReply } from '../../../src/model/reply.js';

const domains = [
  { domainName: 'contoso.com', domainType: 'Authoritative' as const },
  { domainName: '*.contoso.com', domainType: 'InternalRelay' as const },
  { domainName: 'partner-relay.example', domainType: 'ExternalRelay' as const },
  { domainName: '*.deep.example', domainType: 'ExternalRelay' as const },
  { domainName: '*.a.deep.example', domainType: 'Authoritative' as const },
];
const anonPerms = permissionsFor({ permissionGroups: ['AnonymousUsers'], authMechanism: ['Tls'] }, { kind: 'anonymous' });
const userPerms = permissionsFor({ permissionGroups: ['ExchangeUsers'], authMechanism: ['Tls'] }, { kind: 'user' });
const none = new Set<Permission>();

describe('classifyDomain', () => {
  const cases: Array<[string, string | undefined]> = [
    ['contoso.com', 'Authoritative'],
    ['CONTOSO.COM.', 'Authoritative'],
    ['sales.contoso.com', 'InternalRelay'],
    ['partner-relay.example', 'ExternalRelay'],
    ['x.partner-relay.example', undefined],
    ['deep.example', 'ExternalRelay'],
    ['b.a.deep.example', 'Authoritative'],
    ['a.deep.example', 'Authoritative'],
    ['fabrikam.com', undefined],
    ['notcontoso.com', undefined],
  ];
  for (const [domain, type] of cases) test(`${domain} -> ${type ?? 'not accepted'}`, () => assert.equal(classifyDomain(domains, domain)?.domainType, type));
});

describe('checkMailFrom', () => {
  const base: MailFromInput = { permissions: anonPerms, principal: 'anonymous', tls: false, requireTLS: false, sender: 'ann@fabrikam.com', maxMessageSize: 1000, acceptedDomains: domains };
  const cases: Array<{ title: string; input: Partial<MailFromInput>; expect: string | null }> = [
    { title: 'anonymous internet sender is accepted', input: {}, expect: null },
    { title: 'no Submit: anonymous gets 530 5.7.1', input: { permissions: none }, expect: '530 5.7.1 Client was not authenticated' },
    { title: 'no Submit: an authenticated user gets 550 5.7.1', input: { permissions: none, principal: 'user' }, expect: '550 5.7.1 Client does not have permissions to submit to this server' },
    { title: 'SIZE over the limit', input: { declaredSize: 1001 }, expect: '552 5.3.4 Message size exceeds fixed maximum message size' },
    { title: 'SIZE at the limit is fine', input: { declaredSize: 1000 }, expect: null },
    { title: 'BypassMessageSizeLimit skips the size check', input: { declaredSize: 5000, permissions: new Set<Permission>(['SMTPSubmit', 'BypassMessageSizeLimit']) }, expect: null },
    { title: 'requireTLS without TLS', input: { requireTLS: true }, expect: '530 5.7.10 Must issue a STARTTLS command first' },
    { title: 'requireTLS with TLS', input: { requireTLS: true, tls: true }, expect: null },
    { title: 'anonymous may use an authoritative sender when granted', input: { sender: 'ceo@contoso.com' }, expect: null },
    {
      title: 'anti-spoofing: anonymous authoritative sender without the permission',
      input: { sender: 'ceo@contoso.com', permissions: new Set<Permission>(['SMTPSubmit']) },
      expect: '550 5.7.1 Client does not have permissions to send as this sender',
    },
    { title: 'anti-spoofing ignores InternalRelay domains', input: { sender: 'x@sales.contoso.com', permissions: new Set<Permission>(['SMTPSubmit']) }, expect: null },
    { title: 'an authenticated user sends as itself', input: { principal: 'user', permissions: userPerms, authUser: 'ann@contoso.com', sender: 'Ann@Contoso.com' }, expect: null },
    { title: 'an authenticated user may not send as someone else', input: { principal: 'user', permissions: userPerms, authUser: 'ann@contoso.com', sender: 'ceo@contoso.com' }, expect: '550 5.7.1 Client does not have permissions to send as this sender' },
    { title: 'the null sender is accepted', input: { sender: null, permissions: new Set<Permission>(['SMTPSubmit']) }, expect: null },
  ];
  for (const t of cases) {
    test(t.title, () => {
      const v = checkMailFrom({ ...base, ...t.input });
      if (t.expect === null) assert.equal(v.kind, 'accept');
      else assert.equal(v.kind === 'reject' ? formatReply(v.reply) : 'accept', t.expect);
    });
  }
});

describe('checkRcpt', () => {
  const base: RcptInput = { permissions: anonPerms, recipient: 'bob@contoso.com', accepted: 0, maxRecipientsPerMessage: 2, acceptedDomains: domains };
  const cases: Array<{ title: string; input: Partial<RcptInput>; expect: string | null }> = [
    { title: 'anonymous to an Authoritative domain', input: {}, expect: null },
    { title: 'anonymous to an InternalRelay subdomain', input: { recipient: 'x@eu.contoso.com' }, expect: null },
    { title: 'anonymous to an ExternalRelay domain', input: { recipient: 'x@partner-relay.example' }, expect: null },
    { title: 'anonymous relay is refused', input: { recipient: 'x@fabrikam.com' }, expect: '550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain' },
    { title: 'an address literal is not an accepted domain', input: { recipient: 'x@[192.0.2.1]' }, expect: '550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain' },
    { title: 'authenticated users may relay', input: { permissions: userPerms, recipient: 'x@fabrikam.com' }, expect: null },
    { title: 'too many recipients', input: { accepted: 2 }, expect: '452 4.5.3 Too many recipients' },
    { title: 'recipient limit comes before the relay check', input: { accepted: 2, recipient: 'x@fabrikam.com' }, expect: '452 4.5.3 Too many recipients' },
    { title: 'domainless postmaster is accepted', input: { recipient: 'postmaster' }, expect: null },
    { title: 'reserved TLD when enabled', input: { permissions: userPerms, recipient: 'x@foo.test', rejectReservedTopLevelRecipientDomains: true }, expect: '550 5.1.4 Recipient address reserved by RFC 2606' },
    { title: 'reserved SLD when enabled', input: { permissions: userPerms, recipient: 'x@example.com', rejectReservedSecondLevelRecipientDomains: true }, expect: '550 5.1.5 Recipient address reserved by RFC 2606' },
    { title: 'single label when enabled', input: { permissions: userPerms, recipient: 'x@contoso', rejectSingleLabelRecipientDomains: true }, expect: '550 5.1.6 Recipient addresses in single label domains not accepted' },
  ];
  for (const t of cases) {
    test(t.title, () => {
      const v = checkRcpt({ ...base, ...t.input });
      if (t.expect === null) assert.equal(v.kind, 'accept', v.kind === 'reject' ? v.reason : '');
      else assert.equal(v.kind === 'reject' ? formatReply(v.reply) : 'accept', t.expect);
    });
  }
});
