// Self-tests of the interop harness: each real peer (Postfix, Dovecot, dnsmasq, swaks) is started
// the way the Mailyard interop tests start it, and shown to do its job on its own. When one of
// these fails, the Mailyard interop tests that use the same peer cannot be trusted either.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { rm } from 'node:fs/promises';
import { ImapFlow } from 'imapflow';
import type { TestContext } from 'node:test';
import {
  requirePeers,
  missingPeers,
  startPostfix,
  startDovecot,
  startDnsmasq,
  swaks,
  makeCertificate,
  peerTempDir,
  waitFor,
  readMaildir,
  sendLmtp,
} from '../helpers/peers.js';

describe('interop harness: missing peers', () => {
  test('a missing program is named in the skip reason outside CI, and fails the test under CI=true', () => {
    assert.match(missingPeers(['mailyard-no-such-peer']) ?? '', /^mailyard-no-such-peer not installed: apt-get install mailyard-no-such-peer$/);
    assert.equal(missingPeers(['sh']), null);
    let skipped: string | undefined;
    const fake = { skip: (msg?: string) => void (skipped = msg) } as unknown as TestContext;
    const saved = process.env.CI;
    try {
      process.env.CI = '';
      assert.equal(requirePeers(fake, ['mailyard-no-such-peer']), false);
      assert.match(skipped ?? '', /mailyard-no-such-peer not installed/);
      process.env.CI = 'true';
      assert.throws(() => requirePeers(fake, ['mailyard-no-such-peer']), /interop peer unavailable under CI=true: mailyard-no-such-peer not installed/);
    } finally {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    }
  });
});

describe('interop harness: Postfix', () => {
  test('a private Postfix accepts a message from swaks and delivers it to its Maildir', async (t) => {
    if (!requirePeers(t, ['postfix', 'swaks'], { root: true })) return;
    const pf = await startPostfix({ domains: ['dest.interop.test'] });
    t.after(() => pf.stop());
    const r = await swaks([
      '--server', `${pf.host}:${pf.port}`,
      '--from', 'alice@client.interop.test',
      '--to', 'bob@dest.interop.test',
      '--header', 'Subject: harness postfix',
      '--body', 'hello from swaks',
    ]);
    assert.equal(r.code, 0, r.transcript);
    assert.match(r.transcript, /<-\s+250 2\.0\.0 Ok: queued as/);
    const msgs = await waitFor('the message in the Maildir', async () => {
      const m = await pf.messages();
      return m.length > 0 ? m : null;
    });
    assert.equal(msgs.length, 1);
    assert.match(msgs[0]!.raw, /^Delivered-To: bob@dest\.interop\.test$/m);
    assert.match(msgs[0]!.raw, /Subject: harness postfix/);
    assert.match(msgs[0]!.raw, /hello from swaks/);
  });

  test('a private Postfix offers STARTTLS and refuses to relay for a stranger domain from outside mynetworks', async (t) => {
    if (!requirePeers(t, ['postfix', 'swaks', 'openssl'], { root: true })) return;
    const certDir = await peerTempDir('cert');
    t.after(() => rm(certDir, { recursive: true, force: true }));
    const tls = await makeCertificate(certDir, ['postfix.interop.test', '127.0.0.1']);
    // mynetworks without 127.0.0.1: we are a stranger, so only dest.interop.test is accepted
    const pf = await startPostfix({ domains: ['dest.interop.test'], tls, mynetworks: '192.0.2.0/24' });
    t.after(() => pf.stop());
    const ok = await swaks(['--server', `${pf.host}:${pf.port}`, '--tls', '--from', 'a@client.interop.test', '--to', 'bob@dest.interop.test']);
    assert.equal(ok.code, 0, ok.transcript);
    assert.match(ok.transcript, /TLS started/);
    const refused = await swaks(['--server', `${pf.host}:${pf.port}`, '--from', 'a@client.interop.test', '--to', 'x@elsewhere.example']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.transcript, /<\*\* +554 5\.7\.1 .*Relay access denied/);
  });
});

describe('interop harness: dnsmasq', () => {
  test('dnsmasq answers MX and A queries for the test zone and NXDOMAIN for unknown names in it', async (t) => {
    if (!requirePeers(t, ['dnsmasq'])) return;
    const dns = await startDnsmasq({
      mx: [
        { domain: 'example.test', host: 'mx1.example.test', preference: 10 },
        { domain: 'example.test', host: 'mx2.example.test', preference: 20 },
      ],
      hosts: [
        { name: 'mx1.example.test', address: '127.0.0.2' },
        { name: 'mx2.example.test', address: '127.0.0.3' },
      ],
    });
    t.after(() => dns.stop());
    const resolver = new Resolver({ timeout: 2000, tries: 2 });
    resolver.setServers([dns.server]);
    const mx = (await resolver.resolveMx('example.test')).sort((a, b) => a.priority - b.priority);
    assert.deepEqual(mx, [
      { exchange: 'mx1.example.test', priority: 10 },
      { exchange: 'mx2.example.test', priority: 20 },
    ]);
    assert.deepEqual(await resolver.resolve4('mx2.example.test'), ['127.0.0.3']);
    await assert.rejects(resolver.resolve4('nothing.example.test'), (err: NodeJS.ErrnoException) => err.code === 'ENOTFOUND');
  });
});

describe('interop harness: Dovecot', () => {
  test('Dovecot accepts a message over LMTP and it is read back over IMAP', async (t) => {
    if (!requirePeers(t, ['dovecot'])) return;
    const dv = await startDovecot([{ address: 'julia@contoso.test', password: 'harness-secret' }]);
    t.after(() => dv.stop());
    const replies = await sendLmtp({
      host: dv.host,
      port: dv.lmtpPort,
      from: 'sender@client.interop.test',
      to: ['julia@contoso.test', 'nobody@contoso.test'],
      data: 'From: sender@client.interop.test\r\nTo: julia@contoso.test\r\nSubject: harness lmtp\r\n\r\nhello over lmtp\r\n',
    });
    // LMTP: one reply per RCPT; the unknown user is refused, julia gets one reply after DATA
    assert.match(replies.rcpt[0] ?? '', /^250/);
    assert.match(replies.rcpt[1] ?? '', /^550 5\.1\.1/);
    assert.equal(replies.data.length, 1);
    assert.match(replies.data[0] ?? '', /^250 2\.0\.0/);
    assert.equal((await readMaildir(dv.maildirOf('julia@contoso.test'))).length, 1);

    const client = new ImapFlow({
      host: dv.host,
      port: dv.imapPort,
      secure: false,
      auth: { user: 'julia@contoso.test', pass: 'harness-secret' },
      logger: false,
    });
    await client.connect();
    t.after(() => client.logout().catch(() => undefined));
    const lock = await client.getMailboxLock('INBOX');
    try {
      const msg = await client.fetchOne('1', { envelope: true, source: true });
      assert.ok(msg);
      assert.equal(msg.envelope?.subject, 'harness lmtp');
      assert.match(msg.source?.toString() ?? '', /hello over lmtp/);
    } finally {
      lock.release();
    }
  });

  test('Postfix authenticates an SMTP client through the Dovecot auth listener', async (t) => {
    if (!requirePeers(t, ['postfix', 'dovecot', 'swaks'], { root: true })) return;
    const dv = await startDovecot([{ address: 'relayuser@contoso.test', password: 'relay-secret' }]);
    t.after(() => dv.stop());
    const pf = await startPostfix({ domains: ['dest.interop.test'], mynetworks: '192.0.2.0/24', saslAuthPort: dv.authPort });
    t.after(() => pf.stop());
    const good = await swaks([
      '--server', `${pf.host}:${pf.port}`, '--auth', 'PLAIN', '--auth-user', 'relayuser@contoso.test',
      '--auth-password', 'relay-secret', '--from', 'relayuser@contoso.test', '--to', 'x@elsewhere.example',
    ]);
    // authenticated: relaying is allowed (Postfix queues it; it cannot deliver, which is fine here)
    assert.equal(good.code, 0, good.transcript);
    assert.match(good.transcript, /235 2\.7\.0 Authentication successful/);
    const bad = await swaks([
      '--server', `${pf.host}:${pf.port}`, '--auth', 'PLAIN', '--auth-user', 'relayuser@contoso.test',
      '--auth-password', 'wrong', '--from', 'relayuser@contoso.test', '--to', 'x@elsewhere.example',
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.transcript, /535 5\.7\.8/);
  });
});
