import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyHeaderFirewall, isOwnServer } from '../../../src/delivery/header-firewall.js';

const HEADERS = [
  'Received: from client.example (client.example [192.0.2.9])\r\n',
  '\tby mail.contoso.com with ESMTP; Tue, 5 Mar 2024 09:14:07 +0000\r\n',
  'X-MS-Exchange-Organization-SCL: -1\r\n',
  'X-Mailyard-Organization-AuthAs: Internal\r\n',
  'X-Mailyard-Forest-Secret: folded\r\n',
  ' continuation of the secret\r\n',
  'x-ms-exchange-forest-rulesexecuted: yes\r\n',
  'X-MS-Exchange-Transport-Thing: stays\r\n',
  'Subject: hello\r\n',
  'Resent-From: a@contoso.com\r\n',
  '\r\n',
].join('');

describe('header firewall', () => {
  test('to the internet: org and forest headers removed, folded lines too; Received kept', () => {
    const r = applyHeaderFirewall(HEADERS, { sendOrganizationHeaders: false });
    assert.deepEqual(r.removed, ['X-MS-Exchange-Organization-SCL', 'X-Mailyard-Organization-AuthAs', 'X-Mailyard-Forest-Secret', 'x-ms-exchange-forest-rulesexecuted']);
    assert.doesNotMatch(r.headers, /Organization|Forest|continuation of the secret/i);
    assert.match(r.headers, /^Received: from client\.example .*\r\n\tby mail\.contoso\.com/);
    assert.match(r.headers, /X-MS-Exchange-Transport-Thing: stays\r\n/);
    assert.match(r.headers, /Subject: hello\r\nResent-From: a@contoso\.com\r\n\r\n$/);
  });

  test('to our own servers: untouched', () => {
    const r = applyHeaderFirewall(HEADERS, { sendOrganizationHeaders: true });
    assert.equal(r.headers, HEADERS);
    assert.deepEqual(r.removed, []);
  });

  test('without Send-Headers-Routing: Received and Resent-* removed as well', () => {
    const r = applyHeaderFirewall(HEADERS, { sendOrganizationHeaders: true, sendRoutingHeaders: false });
    assert.deepEqual(r.removed, ['Received', 'Resent-From']);
    assert.ok(r.headers.startsWith('X-MS-Exchange-Organization-SCL'));
  });

  test('LF-only input keeps its line endings', () => {
    const r = applyHeaderFirewall('A: 1\nX-MS-Exchange-Organization-X: 2\nB: 3\n', { sendOrganizationHeaders: false });
    assert.equal(r.headers, 'A: 1\nB: 3\n');
  });

  test('own servers by name or address', () => {
    const servers = [{ fqdn: 'EX02.contoso.com', address: '10.0.0.12' }];
    assert.equal(isOwnServer('ex02.contoso.com.', undefined, servers), true);
    assert.equal(isOwnServer('mx.fabrikam.com', '10.0.0.12', servers), true);
    assert.equal(isOwnServer('mx.fabrikam.com', '203.0.113.1', servers), false);
    assert.equal(isOwnServer(undefined, undefined, []), false);
  });
});
