import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { aliasKey, expandAliases, maildirPathFor, splitDetail } from '../../../src/delivery/local-path.js';
import { recipientExists } from '../../../src/delivery/mailbox.js';

const T = '/var/mail/{domain}/{local}';

describe('maildirPathFor: accepted addresses', () => {
  const cases: [string, string, string][] = [
    ['plain address', 'ann@contoso.com', '/var/mail/contoso.com/ann'],
    ['domain lower-cased', 'ann@Contoso.COM', '/var/mail/contoso.com/ann'],
    ['local part lower-cased (case-insensitive mailbox)', 'Ann@contoso.com', '/var/mail/contoso.com/ann'],
    ['+detail maps to the same mailbox', 'ann+news@contoso.com', '/var/mail/contoso.com/ann'],
    ['+detail with several pluses', 'ann+a+b@contoso.com', '/var/mail/contoso.com/ann'],
    ['leading + is part of the name', '+ann@contoso.com', '/var/mail/contoso.com/+ann'],
    ['dots inside the local part', 'ann.lee@contoso.com', '/var/mail/contoso.com/ann.lee'],
    ['trailing dot of the domain dropped', 'ann@contoso.com.', '/var/mail/contoso.com/ann'],
    ['UTF-8 local part', 'josé@contoso.com', '/var/mail/contoso.com/josé'],
    ['exactly 64 octets', `${'a'.repeat(64)}@contoso.com`, `/var/mail/contoso.com/${'a'.repeat(64)}`],
  ];
  for (const [name, address, expected] of cases) {
    test(name, () => {
      const r = maildirPathFor(T, address);
      assert.ok(r.ok, `refused: ${JSON.stringify(r)}`);
      assert.equal(r.path, expected);
    });
  }
  test('template with a fixed name part and a relative root', () => {
    const r = maildirPathFor('data/mail/{domain}/u-{local}/Maildir', 'Bob@X.org');
    assert.ok(r.ok);
    assert.equal(r.path, 'data/mail/x.org/u-bob/Maildir');
  });
  test('detail is reported', () => {
    const r = maildirPathFor(T, 'ann+news@contoso.com');
    assert.ok(r.ok);
    assert.equal(r.detail, 'news');
  });
});

describe('maildirPathFor: path tricks are refused with 5.1.3', () => {
  const cases: [string, string][] = [
    ['parent directory', '..@contoso.com'],
    ['parent directory in the local part', '../../etc/passwd@contoso.com'],
    ['slash', 'a/b@contoso.com'],
    ['backslash', 'a\\b@contoso.com'],
    ['leading dot (hidden directory)', '.ann@contoso.com'],
    ['double dot', 'a..b@contoso.com'],
    ['NUL', 'ann\u0000x@contoso.com'],
    ['control character', 'ann\u0007@contoso.com'],
    ['newline', 'ann\n@contoso.com'],
    ['DEL', 'ann\u007f@contoso.com'],
    ['over-long local part', `${'a'.repeat(65)}@contoso.com`],
    ['over-long multibyte local part', `${'é'.repeat(33)}@contoso.com`],
    ['slash in the domain', 'ann@contoso.com/../../etc'],
    ['dot-dot domain', 'ann@..'],
    ['domain starting with a dot', 'ann@.hidden'],
    ['address literal', 'ann@[192.0.2.1]'],
    ['quoted local part', '"a b"@contoso.com'],
    ['detail hiding a traversal', '..+x@contoso.com'],
    ['no domain', 'ann'],
  ];
  for (const [name, address] of cases) {
    test(name, () => {
      const r = maildirPathFor(T, address);
      assert.equal(r.ok, false, `accepted as ${r.ok ? r.path : ''}`);
      if (!r.ok) {
        assert.equal(r.reply.code, 550);
        assert.equal(r.reply.enhanced, '5.1.3');
      }
    });
  }
});

describe('splitDetail', () => {
  const cases: [string, string, string | undefined][] = [
    ['ann', 'ann', undefined],
    ['ann+x', 'ann', 'x'],
    ['ann+', 'ann', ''],
    ['+ann', '+ann', undefined],
  ];
  for (const [input, base, detail] of cases) {
    test(input, () => assert.deepEqual(splitDetail(input), detail === undefined ? { base } : { base, detail }));
  }
});

describe('aliases and recipient validation', () => {
  const aliases = { 'sales@contoso.com': ['ann@contoso.com', 'bob@contoso.com'], 'Info@Contoso.com': 'ann@contoso.com' };
  const cases: [string, string, string[]][] = [
    ['alias to several', 'sales@contoso.com', ['ann@contoso.com', 'bob@contoso.com']],
    ['alias, case-insensitive', 'SALES@CONTOSO.COM', ['ann@contoso.com', 'bob@contoso.com']],
    ['alias with +detail', 'info+web@contoso.com', ['ann@contoso.com']],
    ['not an alias', 'carol@contoso.com', ['carol@contoso.com']],
  ];
  for (const [name, address, expected] of cases) test(`expandAliases: ${name}`, () => assert.deepEqual(expandAliases(aliases, address), expected));

  test('aliasKey strips detail and case', () => assert.equal(aliasKey('Ann+X@Contoso.COM'), 'ann@contoso.com'));

  const config = { mailboxDelivery: { type: 'maildir' as const, maildirRoot: T, recipientValidation: true, aliases } };
  const users = new Set(['Ann@contoso.com']);
  const rcases: [string, boolean][] = [
    ['ann@contoso.com', true],
    ['ANN+tag@Contoso.com', true],
    ['sales@contoso.com', true],
    ['info@contoso.com', true],
    ['carol@contoso.com', false],
    ['ann@fabrikam.com', false],
  ];
  for (const [address, expected] of rcases) test(`recipientExists ${address}`, () => assert.equal(recipientExists(config, users, address), expected));
});
