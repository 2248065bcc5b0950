// Mailyard's Send connectors against a real Postfix: as a smart host (plain, and with AUTH over
// STARTTLS through Dovecot SASL), as the MX of a domain served by dnsmasq (with a dead first MX),
// a permanent refusal turned into an NDR for the local sender, and Postfix as the sending side.
// What Postfix received is read from its own Maildir.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  requirePeers,
  startPostfix,
  startDovecot,
  startDnsmasq,
  swaks,
  makeCertificate,
  peerTempDir,
  waitFor,
  readMaildir,
  headerValues,
  loopbackAddressFor,
  type MaildirMessage,
  type PostfixPeer,
} from '../helpers/peers.js';
import { searchTracking } from '../../src/logging/tracking-search.js';
import { startMailyard, type MailyardInstance } from './mailyard.js';

// Most tests put Postfix on 127.0.0.2, a next hop on another address than the Mailyard under test
// as in real life; the first one uses 127.0.0.1 on another port (a local relay or filter, which
// must not be mistaken for a mail loop back into Mailyard).
const PEER_ADDRESS = '127.0.0.2';

async function arrived(
  read: () => Promise<MaildirMessage[]>,
  what: string,
  diagnostics: () => Promise<string> | string,
  count = 1,
  timeoutMs = 30_000,
): Promise<MaildirMessage[]> {
  try {
    return await waitFor(what, async () => {
      const m = await read();
      return m.length >= count ? m : null;
    }, timeoutMs, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await diagnostics()}`);
  }
}

/** Waits for Postfix's log to show every pattern (its log lines travel through postlogd, a bit late). */
async function postfixLogged(pf: PostfixPeer, ...patterns: RegExp[]): Promise<string> {
  try {
    return await waitFor(`postfix log lines ${patterns.join(' ')}`, async () => {
      const log = await pf.log();
      return patterns.every((p) => p.test(log)) ? log : null;
    }, 10_000, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${tail(await pf.log())}`);
  }
}

function tail(text: string, lines = 25): string {
  return text.split('\n').slice(-lines).join('\n');
}

function daemonLog(my: MailyardInstance): string {
  return my.daemon.logs.slice(-25).map((l) => JSON.stringify(l)).join('\n');
}

describe('interop: Mailyard → Postfix', () => {
  test('Postfix as smart host receives the relayed message with our Received header and the envelope intact', async (t) => {
    if (!requirePeers(t, ['postfix', 'swaks'], { root: true })) return;
    const pf = await startPostfix({ domains: ['dest.interop.test'] }); // 127.0.0.1, another port
    t.after(() => pf.stop());
    const my = await startMailyard({
      internalRelayDomains: ['dest.interop.test'],
      extra: [
        'sendConnectors:',
        '  - name: To Postfix',
        '    addressSpaces: ["SMTP:dest.interop.test;1"]',
        '    dnsRoutingEnabled: false',
        '    smartHosts: ["[127.0.0.1]"]',
        `    port: ${pf.port}`,
        '    protocolLoggingLevel: Verbose',
      ].join('\n'),
    });
    t.after(() => my.stop());
    const r = await swaks([
      '--server', `127.0.0.1:${my.internetPort}`, '--from', 'sender@fabrikam.example',
      '--to', 'bob@dest.interop.test,carol@dest.interop.test', '--header', 'Subject: via smart host', '--body', 'relayed through mailyard',
    ]);
    assert.equal(r.code, 0, r.transcript);
    const msgs = await arrived(() => pf.messages(), 'two deliveries in the Postfix Maildir', async () => `${daemonLog(my)}\n${tail(await pf.log())}`, 2);
    const delivered = msgs.map((m) => /^Delivered-To: (.*)$/m.exec(m.raw)?.[1]).sort();
    assert.deepEqual(delivered, ['bob@dest.interop.test', 'carol@dest.interop.test']);
    for (const m of msgs) {
      assert.match(m.raw, /^Return-Path: <sender@fabrikam\.example>$/m);
      assert.match(m.raw, /Subject: via smart host/);
      assert.ok(headerValues(m.raw, 'Received').some((v) => /\bby mailyard\.interop\.test\b/.test(v)), m.raw);
    }
    // Postfix saw one connection from us carrying both recipients
    await postfixLogged(pf, /nrcpt=2/);
    // this Postfix offers no STARTTLS: the SEND tracking event says the hop was plaintext
    const send = await waitFor('a SEND tracking event', async () => (await searchTracking(join(my.dir, 'log', 'MessageTracking'), { eventId: 'SEND' }))[0], 10_000, 100);
    assert.equal(send.SourceContext, 'TLS=none');
  });

  test('Mailyard authenticates to a Postfix smart host over STARTTLS (BasicAuthRequireTLS) with the credential file', async (t) => {
    if (!requirePeers(t, ['postfix', 'dovecot', 'swaks', 'openssl'], { root: true })) return;
    const certDir = await peerTempDir('pf-cert');
    t.after(() => rm(certDir, { recursive: true, force: true }));
    const tls = await makeCertificate(certDir, ['postfix.interop.test', '127.0.0.1']);
    const dv = await startDovecot([{ address: 'mailyard-relay@interop.test', password: 'relay-Pass-7' }]);
    t.after(() => dv.stop());
    const pf = await startPostfix({ domains: ['dest.interop.test'], tls, saslAuthPort: dv.authPort, requireAuth: true, mynetworks: '192.0.2.0/24', listenAddress: PEER_ADDRESS });
    t.after(() => pf.stop());
    const passFile = join(certDir, 'relay.pass');
    await writeFile(passFile, 'relay-Pass-7\n', { mode: 0o600 });
    const my = await startMailyard({
      internalRelayDomains: ['dest.interop.test'],
      extra: [
        'sendConnectors:',
        '  - name: To Postfix with AUTH',
        '    addressSpaces: ["SMTP:dest.interop.test;1"]',
        '    dnsRoutingEnabled: false',
        `    smartHosts: ["[${PEER_ADDRESS}]"]`,
        `    port: ${pf.port}`,
        '    smartHostAuthMechanism: BasicAuthRequireTLS',
        `    authenticationCredential: { username: mailyard-relay@interop.test, passwordFile: ${passFile} }`,
        '    protocolLoggingLevel: Verbose',
      ].join('\n'),
    });
    t.after(() => my.stop());
    const r = await swaks(['--server', `127.0.0.1:${my.internetPort}`, '--from', 'sender@fabrikam.example', '--to', 'bob@dest.interop.test', '--header', 'Subject: authenticated relay']);
    assert.equal(r.code, 0, r.transcript);
    const [msg] = await arrived(() => pf.messages(), 'the authenticated delivery in the Postfix Maildir', async () => `${daemonLog(my)}\n${tail(await pf.log())}`);
    assert.match(msg!.raw, /Subject: authenticated relay/);
    await postfixLogged(pf, /TLS connection established from localhost/, /sasl_method=(PLAIN|LOGIN), sasl_username=mailyard-relay@interop\.test/);
    // the tracking log's SEND event says how the hop was protected
    const send = await waitFor('a SEND tracking event', async () => (await searchTracking(join(my.dir, 'log', 'MessageTracking'), { eventId: 'SEND' }))[0], 10_000, 100);
    assert.match(send.SourceContext, /^TLS=TLSv1\.[23];Cipher=[A-Z0-9_-]+;CertificateValidated=(true|false)/);
    // the password never reaches Mailyard's own log
    assert.ok(!my.daemon.logs.some((l) => JSON.stringify(l).includes('relay-Pass-7')));
  });

  test('a recipient Postfix refuses with 550 5.1.1 comes back to the local sender as an NDR naming the reply', async (t) => {
    if (!requirePeers(t, ['postfix', 'swaks'], { root: true })) return;
    const pf = await startPostfix({ domains: ['dest.interop.test'], rejectRecipients: ['gone@dest.interop.test'], listenAddress: PEER_ADDRESS });
    t.after(() => pf.stop());
    const my = await startMailyard({
      internalRelayDomains: ['dest.interop.test'],
      extra: ['sendConnectors:', '  - name: To Postfix', '    addressSpaces: ["SMTP:dest.interop.test;1"]', '    dnsRoutingEnabled: false', `    smartHosts: ["[${PEER_ADDRESS}]"]`, `    port: ${pf.port}`].join('\n'),
    });
    t.after(() => my.stop());
    const r = await swaks(['--server', `127.0.0.1:${my.internetPort}`, '--from', 'julia@contoso.test', '--to', 'gone@dest.interop.test', '--header', 'Subject: to a gone user']);
    assert.equal(r.code, 0, r.transcript);
    const [ndr] = await arrived(() => readMaildir(my.maildirOf('julia@contoso.test')), 'the NDR in the sender\'s Maildir', async () => `${daemonLog(my)}\n${tail(await pf.log())}`);
    assert.match(ndr!.raw, /multipart\/report/i);
    assert.match(ndr!.raw, /report-type="?delivery-status/i);
    assert.match(ndr!.raw, /gone@dest\.interop\.test/);
    assert.match(ndr!.raw, /550[ -]5\.1\.1/);
    assert.equal((await pf.messages()).length, 0);
  });

  // MX delivery goes to port 25, as in Exchange (a Send connector's `port` is for smart hosts
  // only), so this Postfix listens on 25 of a random 127.x.y.z address, and the dead first MX is
  // another random loopback address where nothing listens.
  test('Postfix as the MX of a domain in dnsmasq: the dead first MX is skipped and the second one gets the mail', async (t) => {
    if (!requirePeers(t, ['postfix', 'dnsmasq', 'swaks'], { root: true })) return;
    const mxAddress = await loopbackAddressFor(25);
    const deadAddress = await loopbackAddressFor(25);
    const pf = await startPostfix({ domains: ['mx.interop.test'], listenAddress: mxAddress, port: 25 });
    t.after(() => pf.stop());
    const dns = await startDnsmasq({
      mx: [
        { domain: 'mx.interop.test', host: 'mx1.mx.interop.test', preference: 10 },
        { domain: 'mx.interop.test', host: 'mx2.mx.interop.test', preference: 20 },
      ],
      hosts: [
        { name: 'mx1.mx.interop.test', address: deadAddress },
        { name: 'mx2.mx.interop.test', address: mxAddress },
      ],
    });
    t.after(() => dns.stop());
    const my = await startMailyard({
      dnsServer: dns.server,
      internalRelayDomains: ['mx.interop.test'],
      extra: ['sendConnectors:', '  - name: By MX', '    addressSpaces: ["SMTP:mx.interop.test;1"]', '    dnsRoutingEnabled: true', '    protocolLoggingLevel: Verbose'].join('\n'),
    });
    t.after(() => my.stop());
    const r = await swaks(['--server', `127.0.0.1:${my.internetPort}`, '--from', 'sender@fabrikam.example', '--to', 'dora@mx.interop.test', '--header', 'Subject: by mx']);
    assert.equal(r.code, 0, r.transcript);
    const [msg] = await arrived(() => pf.messages(), 'the delivery through the second MX', async () => `${daemonLog(my)}\n${tail(await pf.log())}`);
    assert.match(msg!.raw, /^Delivered-To: dora@mx\.interop\.test$/m);
    assert.match(msg!.raw, /Subject: by mx/);
    // the first MX was tried and refused before the second one took the message
    await waitFor(`a log line about the refused first MX ${deadAddress}:25`, () => my.daemon.logs.some((l) => JSON.stringify(l).includes(`${deadAddress}:25`)), 5_000);
  });
});

describe('interop: Postfix → Mailyard', () => {
  test('Postfix relays to a Mailyard Receive connector over STARTTLS and Mailyard delivers to the local Maildir', async (t) => {
    if (!requirePeers(t, ['postfix', 'swaks', 'openssl'], { root: true })) return;
    const certDir = await peerTempDir('my-cert');
    t.after(() => rm(certDir, { recursive: true, force: true }));
    const tls = await makeCertificate(certDir, ['mailyard.interop.test', '127.0.0.1']);
    const my = await startMailyard({ tls });
    t.after(() => my.stop());
    const pf = await startPostfix({ relayTo: { host: '127.0.0.1', port: my.internetPort }, clientTls: true });
    t.after(() => pf.stop());
    const r = await swaks(['--server', `${pf.host}:${pf.port}`, '--from', 'sender@client.interop.test', '--to', 'julia@contoso.test', '--header', 'Subject: from postfix', '--body', 'postfix to mailyard']);
    assert.equal(r.code, 0, r.transcript);
    const [msg] = await arrived(() => readMaildir(my.maildirOf('julia@contoso.test')), 'the message in julia\'s Maildir', async () => `${daemonLog(my)}\n${tail(await pf.log())}`);
    assert.match(msg!.raw, /Subject: from postfix/);
    assert.match(msg!.raw, /postfix to mailyard/);
    // two hops: our Received (over TLS) on top of Postfix's own
    const received = headerValues(msg!.raw, 'Received');
    assert.ok(received.length >= 2, received.join('\n'));
    assert.match(received[0]!, /^from postfix\.interop\.test\b.*\bby mailyard\.interop\.test\b/);
    assert.match(received[0]!, /TLS/i);
    assert.ok(received.slice(1).some((v) => /\bby postfix\.interop\.test\b/.test(v)), received.join('\n'));
    await postfixLogged(pf, /TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]/, /status=sent \(250 /);
  });
});
