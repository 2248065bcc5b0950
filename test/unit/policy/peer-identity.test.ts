import { test } from 'node:test';
import assert from 'node:assert/strict';
import { certificateNames, principalFromCertificate } from '../../../src/policy/peer-identity.js';

const base = { organizationServers: [{ fqdn: 'ex02.contoso.com' }], domainSecureEnabled: true, domainSecureList: ['fabrikam.com'] };

test('certificate names decide server and partner principals', () => {
  const cases: Array<[string[], boolean, string | undefined]> = [
    [['ex02.contoso.com'], true, 'server'],
    [['EX02.Contoso.com.'], true, 'server'],
    [['mail.fabrikam.com'], true, 'partner'],
    [['fabrikam.com'], true, 'partner'],
    [['mail.fabrikam.com'], false, undefined],
    [['notfabrikam.com'], true, undefined],
    [['ex03.contoso.com'], true, undefined],
    [[], true, undefined],
  ];
  for (const [names, ds, kind] of cases) {
    assert.equal(principalFromCertificate({ ...base, names, domainSecureEnabled: ds })?.kind, kind, names.join());
  }
});

test('certificate names come from subjectAltName DNS entries, else the CN', () => {
  assert.deepEqual(certificateNames({ subjectaltname: 'DNS:a.example, IP Address:192.0.2.1, DNS:b.example', subject: { CN: 'c.example' } }), ['a.example', 'b.example']);
  assert.deepEqual(certificateNames({ subject: { CN: 'c.example' } }), ['c.example']);
  assert.deepEqual(certificateNames(undefined), []);
});
