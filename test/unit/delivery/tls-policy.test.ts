import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { certificateMatchesDomain, certificateNames, nameMatches, tlsPolicyFor, type TlsPolicyInput } from '../../../src/delivery/smtp/tls-policy.js';

const base: TlsPolicyInput = { requireTLS: false, ignoreStartTls: false, smartHostAuthMechanism: 'None', tlsAuthLevel: undefined, tlsDomain: undefined };

describe('TLS policy of a Send connector', () => {
  test('defaults to opportunistic STARTTLS without verification', () => {
    assert.deepEqual(tlsPolicyFor(base, 'fabrikam.com'), { mode: 'opportunistic', verify: 'none' });
  });
  test('ignoreStartTls → plaintext', () => {
    assert.deepEqual(tlsPolicyFor({ ...base, ignoreStartTls: true }, 'x'), { mode: 'plaintext', verify: 'none' });
  });
  test('requireTLS and BasicAuthRequireTLS → required', () => {
    assert.equal(tlsPolicyFor({ ...base, requireTLS: true }, 'x').mode, 'required');
    assert.equal(tlsPolicyFor({ ...base, smartHostAuthMechanism: 'BasicAuthRequireTLS' }, 'x').mode, 'required');
  });
  test('DomainValidation uses tlsDomain, else the recipient domain', () => {
    assert.deepEqual(tlsPolicyFor({ ...base, requireTLS: true, tlsAuthLevel: 'DomainValidation', tlsDomain: 'Fabrikam.com' }, 'other.example'), {
      mode: 'required',
      verify: 'domain',
      domain: 'fabrikam.com',
    });
    assert.equal(tlsPolicyFor({ ...base, requireTLS: true, tlsAuthLevel: 'DomainValidation' }, 'contoso.com').domain, 'contoso.com');
    assert.equal(tlsPolicyFor({ ...base, requireTLS: true, tlsAuthLevel: 'CertificateValidation' }, 'x').verify, 'chain');
  });
});

describe('certificate names (RFC 6125)', () => {
  const rows = [
    ['mx.example.com', 'mx.example.com', true],
    ['MX.Example.COM', 'mx.example.com.', true],
    ['*.example.com', 'mx.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'a.b.example.com', false],
    ['f*.example.com', 'foo.example.com', false],
    ['*.com', 'example.com', false],
    ['mx.example.com', 'mx2.example.com', false],
  ] as const;
  for (const [pattern, domain, expected] of rows) {
    test(`${pattern} vs ${domain}`, () => assert.equal(nameMatches(pattern, domain), expected));
  }
  test('SAN DNS names win over the CN', () => {
    const names = certificateNames('DNS:mail.fabrikam.com, DNS:*.fabrikam.com, IP Address:192.0.2.1', 'ignored.example');
    assert.deepEqual(names, ['mail.fabrikam.com', '*.fabrikam.com']);
    assert.equal(certificateMatchesDomain(names, 'smtp.fabrikam.com'), true);
    assert.equal(certificateMatchesDomain(names, 'ignored.example'), false);
    assert.deepEqual(certificateNames(undefined, 'Only.CN.example'), ['only.cn.example']);
  });
});
