import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyHeaderFirewall, countLocalReceived, countReceived, fieldValue, hopCountExceeded, localHopCountExceeded, splitHeader } from '../../../src/policy/headers.js';
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
  test('the local hop count counts only Received fields whose "by" names one of our servers', () => {
    const local = new Set(['mx1.contoso.com', 'mx2.contoso.com']);
    const f = splitHeader(
      [
        'Received: from a.example ([192.0.2.1])\r\n\tby MX1.contoso.com. with ESMTP id 1; Mon, 23 Nov 2026 10:00:00 +0000',
        'Received: from mx1.contoso.com by mx2.contoso.com with ESMTP id 2; Mon, 23 Nov 2026 10:00:01 +0000',
        'Received: from mx2.contoso.com by relay.fabrikam.com with ESMTP id 3; Mon, 23 Nov 2026 10:00:02 +0000',
        'Received: from x (not by mx1.contoso.com in a comment)',
        'Subject: loop',
        '',
      ].join('\r\n'),
    );
    assert.equal(countLocalReceived(f, local), 2);
    assert.equal(localHopCountExceeded(f, 3, local), false, 'two of ours plus the one we add is 3');
    assert.equal(localHopCountExceeded(f, 2, local), true);
    assert.equal(localHopCountExceeded(f, 0, local), false, '0 means never refuse');
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
