import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyHeaderFirewall, countReceived, fieldValue, hopCountExceeded, splitHeader } from '../../../src/policy/headers.js';
import { permissionsFor, type Permission } from '../../../src/policy/permissions.js';

const block = [
  'Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000',
  'Received: from c',
  '\tby d; Mon, 1 Jan 2024 00:00:00 +0000',
  'X-Mailyard-Organization-AuthAs: Internal',
  'X-MS-Exchange-Organization-SCL: -1',
  'X-MS-Exchange-Forest-Foo: 1',
  'X-Mailyard-Forest-Bar: 2',
  'Resent-From: x@y',
  'Subject: hello',
  '  world',
  'Message-ID: <a@b>',
  '',
].join('\r\n');

describe('header checks', () => {
  test('folded fields stay whole', () => {
    const f = splitHeader(block);
    assert.equal(f.length, 9);
    assert.equal(fieldValue(f, 'subject'), 'hello  world');
    assert.equal(countReceived(f), 2);
  });
  test('hop count counts the Received field we add', () => {
    const f = splitHeader(block);
    assert.equal(hopCountExceeded(f, 3), false);
    assert.equal(hopCountExceeded(f, 2), true);
  });
  const cases: Array<{ title: string; perms: ReadonlySet<Permission>; stripped: string[] }> = [
    {
      title: 'anonymous sessions lose organization and forest headers but keep routing headers',
      perms: permissionsFor({ permissionGroups: ['AnonymousUsers'], authMechanism: ['Tls'] }, { kind: 'anonymous' }),
      stripped: ['X-Mailyard-Organization-AuthAs', 'X-MS-Exchange-Organization-SCL', 'X-MS-Exchange-Forest-Foo', 'X-Mailyard-Forest-Bar'],
    },
    { title: 'organization servers keep everything', perms: permissionsFor({ permissionGroups: ['ExchangeServers'], authMechanism: ['Tls'] }, { kind: 'server' }), stripped: [] },
    {
      title: 'without AcceptRoutingHeaders Received and Resent-* go too',
      perms: new Set<Permission>(['SMTPSubmit']),
      stripped: ['Received', 'Received', 'X-Mailyard-Organization-AuthAs', 'X-MS-Exchange-Organization-SCL', 'X-MS-Exchange-Forest-Foo', 'X-Mailyard-Forest-Bar', 'Resent-From'],
    },
  ];
  for (const t of cases) {
    test(t.title, () => {
      const r = applyHeaderFirewall(splitHeader(block), t.perms);
      assert.deepEqual(r.stripped, t.stripped);
      assert.ok(r.kept.some((f) => f.name === 'Subject'));
    });
  }
});
