import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { editDistance, formatIssue, normalizePermission, parseConfigText, parseHostPort, suggest } from '../../../src/config/index.js';

function errors(text: string): string[] {
  const r = parseConfigText(text, 'c.yaml');
  return r.ok ? [] : r.issues.filter((i) => i.severity === 'error').map(formatIssue);
}

const connector = (name: string, bindings: string[], ranges?: string[], extra = '') =>
  `  - { name: ${name}, bindings: ${JSON.stringify(bindings)}${ranges ? `, remoteIPRanges: ${JSON.stringify(ranges)}` : ''}, permissionGroups: [AnonymousUsers]${extra} }\n`;

describe('Receive connector listener rules', () => {
  test('nested ranges on a shared binding are fine (the most specific one wins at run time)', () => {
    const text = `receiveConnectors:\n${connector('All', ['0.0.0.0:25'])}${connector('Net', ['0.0.0.0:25'], ['10.0.0.0/8'])}${connector('Host', ['0.0.0.0:25'], ['10.1.2.3'])}`;
    assert.deepEqual(errors(text), []);
  });

  test('the same ranges on different bindings are fine', () => {
    const text = `receiveConnectors:\n${connector('A', ['0.0.0.0:25'], ['10.0.0.0/8'])}${connector('B', ['10.0.0.1:25'], ['10.0.0.0/8'])}${connector('C', ['0.0.0.0:26'], ['10.0.0.0/8'])}`;
    assert.deepEqual(errors(text), []);
  });

  test('IPv4 and IPv6 ranges never overlap each other', () => {
    const text = `receiveConnectors:\n${connector('A', ['0.0.0.0:25'], ['0.0.0.0/0'])}${connector('B', ['0.0.0.0:25'], ['::/0'])}`;
    assert.deepEqual(errors(text), []);
  });

  test('a range that also appears on another connector of the same binding is refused', () => {
    const text = `receiveConnectors:\n${connector('A', ['0.0.0.0:25'], ['10.0.0.0/8', '192.0.2.1'])}${connector('B', ['0.0.0.0:25'], ['10.0.0.0-10.255.255.255'])}`;
    assert.deepEqual(errors(text), [
      'c.yaml:3:59: remote IP range "10.0.0.0-10.255.255.255" is also on "A" with the same binding 0.0.0.0:25; a client in it would match both connectors',
    ]);
  });

  test('two Hub connectors may share a port; a Frontend and a Hub may not', () => {
    const ok = `receiveConnectors:\n${connector('A', ['127.0.0.1:2525'], undefined, ', transportRole: HubTransport')}${connector('B', ['10.0.0.1:2525'], undefined, ', transportRole: HubTransport')}`;
    assert.deepEqual(errors(ok), []);
  });
});

describe('permission names', () => {
  const cases: [string, string | undefined][] = [
    ['SMTPAcceptAnyRecipient', 'SMTPAcceptAnyRecipient'],
    ['AcceptAnyRecipient', 'SMTPAcceptAnyRecipient'],
    ['ms-Exch-SMTP-Accept-Any-Recipient', 'SMTPAcceptAnyRecipient'],
    ['MS-EXCH-SMTP-SUBMIT', 'SMTPSubmit'],
    ['smtpsubmit', 'SMTPSubmit'],
    ['ms-Exch-Accept-Headers-Routing', 'AcceptRoutingHeaders'],
    ['AcceptRoutingHeaders', 'AcceptRoutingHeaders'],
    ['ms-Exch-Bypass-Message-Size-Limit', 'BypassMessageSizeLimit'],
    ['ms-Exch-SMTP-Accept-Authoritative-Domain-Sender', 'SMTPAcceptAuthoritativeDomainSender'],
    ['SMTPAcceptEXCH50', undefined],
    ['Relay', undefined],
  ];
  for (const [name, want] of cases) test(`${name} -> ${want ?? 'unknown'}`, () => assert.equal(normalizePermission(name), want));
});

describe('helpers', () => {
  test('host:port forms', () => {
    assert.deepEqual(parseHostPort('10.0.0.1', false), { host: '10.0.0.1' });
    assert.deepEqual(parseHostPort('10.0.0.1:53', false), { host: '10.0.0.1', port: 53 });
    assert.deepEqual(parseHostPort('[::1]:5353', false), { host: '::1', port: 5353 });
    assert.deepEqual(parseHostPort('2001:db8::1', false), { host: '2001:db8::1' });
    assert.deepEqual(parseHostPort('relay.example:587', true), { host: 'relay.example', port: 587 });
    assert.equal(parseHostPort('relay.example', false), undefined);
    assert.equal(parseHostPort('10.0.0.1:0', false), undefined);
    assert.equal(parseHostPort('bad host', true), undefined);
  });

  test('suggestions only for likely typos', () => {
    assert.equal(editDistance('maxMesageSize', 'maxMessageSize'), 1);
    assert.equal(suggest('maxMesageSize', ['maxHeaderSize', 'maxMessageSize']), 'maxMessageSize');
    assert.equal(suggest('recieveConnectors', ['receiveConnectors', 'sendConnectors']), 'receiveConnectors');
    assert.equal(suggest('colour', ['receiveConnectors', 'sendConnectors']), undefined);
  });
});
