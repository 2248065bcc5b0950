import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSmtpDeliveryAgent } from '../../../src/delivery/smtp/agent.js';
import type { DeliveryResult } from '../../../src/model/outcome.js';
import { createNodeResolver } from '../../../src/platform/dns.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { makeTestPki, startSmtpSink, type SmtpSink, type TestPki } from '../../helpers/smtp-sink.js';
import { MemoryProtocolLog, SIMPLE, makeConfig, signal, silent, tempSpool, type TempSpool } from './setup.js';

describe('smart hosts: authentication, TLS policy, failover', () => {
  let pki: TestPki;
  let tlsAuthSink: SmtpSink; // STARTTLS + AUTH
  let plainAuthSink: SmtpSink; // AUTH, no STARTTLS
  let plainSink: SmtpSink; // neither
  let dns: TestDnsServer;
  let spool: TempSpool;
  let passwordFile: string;
  let wrongPasswordFile: string;

  before(async () => {
    pki = await makeTestPki(['mx.fabrikam.test', '*.wild.test']);
    const auth = { username: 'relayuser', password: 's3cret-pass' };
    tlsAuthSink = await startSmtpSink({ tls: { key: pki.key, cert: pki.cert }, auth });
    plainAuthSink = await startSmtpSink({ auth });
    plainSink = await startSmtpSink();
    dns = await startDnsServer({ 'relay.fabrikam.test': { a: ['127.0.0.1'] }, 'mxrelay.test': { mx: [{ exchange: 'relay.fabrikam.test', preference: 10 }] } });
    spool = await tempSpool();
    passwordFile = join(spool.dir, 'password');
    wrongPasswordFile = join(spool.dir, 'wrong');
    await writeFile(passwordFile, 's3cret-pass\n');
    await writeFile(wrongPasswordFile, 'not-it\n');
  });
  after(async () => {
    await Promise.all([tlsAuthSink.close(), plainAuthSink.close(), plainSink.close(), dns.close(), spool.cleanup(), pki.cleanup()]);
  });

  async function send(connector: Record<string, unknown>, extra: Record<string, unknown> = {}, log = new MemoryProtocolLog()): Promise<DeliveryResult> {
    const { config, connector: c } = makeConfig({ dnsRoutingEnabled: false, protocolLoggingLevel: 'Verbose', ...connector }, extra);
    const agent = createSmtpDeliveryAgent({ config, connector: c, resolver: createNodeResolver({ servers: [dns.address], timeoutMs: 1000 }), logger: silent, protocolLog: log });
    try {
      const batch = await spool.batch({ deliveryType: 'SmartHostConnectorDelivery', nextHopDomain: 'smarthosts', recipients: ['ann@fabrikam.test'], body: SIMPLE });
      return await agent.deliver(batch, signal());
    } finally {
      await agent.close?.();
    }
  }

  test('BasicAuthRequireTLS: STARTTLS first, then AUTH, then the message', async () => {
    const before = tlsAuthSink.messages.length;
    const log = new MemoryProtocolLog();
    const r = await send(
      { smartHosts: [`127.0.0.1:${tlsAuthSink.port}`], smartHostAuthMechanism: 'BasicAuthRequireTLS', authenticationCredential: { username: 'relayuser', passwordFile } },
      {},
      log,
    );
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    const m = tlsAuthSink.messages[before]!;
    assert.equal(m.secure, true);
    assert.equal(m.user, 'relayuser');
    assert.ok(tlsAuthSink.authAttempts.length > 0 && tlsAuthSink.authAttempts.every((a) => a.secure), 'AUTH only after STARTTLS');
    assert.match(r.session?.tls?.protocol ?? '', /^TLSv1\.[23]$/);
    // the password never reaches the protocol log, not even base64-encoded
    const text = log.lines().join('\n');
    assert.doesNotMatch(text, /s3cret-pass/);
    assert.doesNotMatch(text, new RegExp(Buffer.from('\u0000relayuser\u0000s3cret-pass').toString('base64').slice(0, 16)));
    assert.match(text, /^> AUTH PLAIN$/m);
    assert.match(text, /TLS protocol TLSv1\.[23] negotiation succeeded/);
  });

  test('BasicAuthRequireTLS without STARTTLS at the smart host: no credential sent, deferred', async () => {
    const beforeMsgs = plainAuthSink.messages.length;
    const beforeWire = plainAuthSink.wire.length;
    const r = await send({ smartHosts: [`127.0.0.1:${plainAuthSink.port}`], smartHostAuthMechanism: 'BasicAuthRequireTLS', authenticationCredential: { username: 'relayuser', passwordFile } });
    const o = r.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind, 'deferred');
    assert.equal(o?.kind === 'deferred' && o.category, 'tls');
    assert.equal(r.connectionFailure, true);
    assert.equal(plainAuthSink.authAttempts.length, 0);
    assert.equal(plainAuthSink.messages.length, beforeMsgs);
    const bytes = Buffer.concat(plainAuthSink.wire.slice(beforeWire).flat()).toString('latin1');
    assert.doesNotMatch(bytes, /AUTH/i);
    assert.doesNotMatch(bytes, /MAIL FROM/i);
  });

  test('AUTH LOGIN: username and password never reach the protocol log', async () => {
    const s = await startSmtpSink({ tls: { key: pki.key, cert: pki.cert }, auth: { username: 'relayuser', password: 's3cret-pass' }, authMethods: ['LOGIN'] });
    try {
      const log = new MemoryProtocolLog();
      const r = await send({ smartHosts: [`127.0.0.1:${s.port}`], smartHostAuthMechanism: 'BasicAuth', authenticationCredential: { username: 'relayuser', passwordFile } }, {}, log);
      assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
      assert.equal(s.messages[0]?.user, 'relayuser');
      const lines = log.lines();
      assert.ok(lines.includes('> AUTH LOGIN'));
      assert.equal(lines.filter((l) => l === '< 334 <authentication response>').length, 2);
      const text = lines.join('\n');
      for (const secret of ['relayuser', 's3cret-pass']) assert.ok(!text.includes(Buffer.from(secret).toString('base64')), `${secret} (base64) not logged`);
      assert.ok(!text.includes('s3cret-pass'));
      // sequence numbers skip the suppressed lines, as Exchange's logs do
      const seq = log.events.map((e) => e.event.sequence);
      assert.ok(seq.some((n, i) => i > 0 && n > seq[i - 1]! + 1));
    } finally {
      await s.close();
    }
  });

  test('BasicAuth with a wrong password defers (never bounces)', async () => {
    const r = await send({ smartHosts: [`127.0.0.1:${tlsAuthSink.port}`], smartHostAuthMechanism: 'BasicAuth', authenticationCredential: { username: 'relayuser', passwordFile: wrongPasswordFile } });
    const o = r.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind, 'deferred');
    assert.equal(o?.kind === 'deferred' && o.category, 'policy');
    assert.equal(r.connectionFailure, true);
  });

  test('requireTLS with a smart host that does not offer STARTTLS: deferred, nothing sent', async () => {
    const before = plainSink.messages.length;
    const r = await send({ smartHosts: [`127.0.0.1:${plainSink.port}`], requireTLS: true });
    const o = r.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind, 'deferred');
    assert.equal(o?.kind === 'deferred' && o.category, 'tls');
    assert.equal(plainSink.messages.length, before);
  });

  test('opportunistic STARTTLS by default accepts any certificate', async () => {
    const before = tlsAuthSink.messages.length;
    const r = await send({ smartHosts: [`127.0.0.1:${tlsAuthSink.port}`] });
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(tlsAuthSink.messages[before]?.secure, true);
    assert.equal(r.session?.tls?.authorized, false);
  });

  test('ignoreStartTls stays in plaintext', async () => {
    const before = tlsAuthSink.messages.length;
    const r = await send({ smartHosts: [`127.0.0.1:${tlsAuthSink.port}`], ignoreStartTls: true });
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(tlsAuthSink.messages[before]?.secure, false);
    assert.equal(r.session?.tls, undefined);
  });

  test('CertificateValidation: the chain must verify against tls.caFile', async () => {
    const ok = await send({ smartHosts: [`127.0.0.1:${tlsAuthSink.port}`], requireTLS: true, tlsAuthLevel: 'CertificateValidation' }, { tls: { caFile: pki.caFile } });
    assert.equal(ok.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(ok.session?.tls?.authorized, true);
    const bad = await send({ smartHosts: [`127.0.0.1:${tlsAuthSink.port}`], requireTLS: true, tlsAuthLevel: 'CertificateValidation' });
    const o = bad.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind, 'deferred');
    assert.equal(o?.kind === 'deferred' && o.category, 'tls');
  });

  test('DomainValidation: the certificate must match tlsDomain (wildcards per RFC 6125)', async () => {
    const tls = { tls: { caFile: pki.caFile } };
    const base = { smartHosts: [`127.0.0.1:${tlsAuthSink.port}`], requireTLS: true, tlsAuthLevel: 'DomainValidation' };
    assert.equal((await send({ ...base, tlsDomain: 'mx.fabrikam.test' }, tls)).outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal((await send({ ...base, tlsDomain: 'smtp.wild.test' }, tls)).outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal((await send({ ...base, tlsDomain: 'a.b.wild.test' }, tls)).outcomes.get('ann@fabrikam.test')?.kind, 'deferred');
    assert.equal((await send({ ...base, tlsDomain: 'contoso.test' }, tls)).outcomes.get('ann@fabrikam.test')?.kind, 'deferred');
  });

  test('opportunistic TLS: a failed handshake is retried once in plaintext', async () => {
    const s = await startSmtpSink({ tls: { key: pki.key, cert: pki.cert, maxVersion: 'TLSv1.2' } });
    try {
      const r = await send({ smartHosts: [`127.0.0.1:${s.port}`] }, { tls: { minVersion: 'TLSv1.3' } });
      assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
      assert.equal(s.messages[0]?.secure, false);
      assert.equal(s.connections, 2);
      // with requireTLS the same failure defers instead
      const r2 = await send({ smartHosts: [`127.0.0.1:${s.port}`], requireTLS: true }, { tls: { minVersion: 'TLSv1.3' } });
      assert.equal(r2.outcomes.get('ann@fabrikam.test')?.kind, 'deferred');
      assert.equal(s.messages.length, 1);
    } finally {
      await s.close();
    }
  });

  test('a smart host refusing at the greeting (554) defers with connectionFailure, never bounces', async () => {
    const s = await startSmtpSink({ connectReply: '554 5.7.1 Go away' });
    try {
      const r = await send({ smartHosts: [`127.0.0.1:${s.port}`] });
      const o = r.outcomes.get('ann@fabrikam.test');
      assert.equal(o?.kind, 'deferred');
      assert.equal(r.connectionFailure, true);
      assert.match(o?.reply?.text ?? '', /554 5\.7\.1 Go away/);
    } finally {
      await s.close();
    }
  });

  test('smart hosts are tried in order; one that is down does not hold up the next', async () => {
    const before = plainSink.messages.length;
    const r = await send({ smartHosts: [`127.0.0.3:${plainSink.port}`, `[127.0.0.1]:${plainSink.port}`] });
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(plainSink.messages.length, before + 1);
  });

  test('an FQDN smart host is resolved through DNS (MX first, then A)', async () => {
    const before = plainSink.messages.length;
    const r1 = await send({ smartHosts: [`relay.fabrikam.test:${plainSink.port}`] }, { dns: { servers: [dns.address] } });
    assert.equal(r1.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(r1.session?.host, 'relay.fabrikam.test');
    const r2 = await send({ smartHosts: [`mxrelay.test:${plainSink.port}`] }, { dns: { servers: [dns.address] } });
    assert.equal(r2.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(r2.session?.host, 'relay.fabrikam.test');
    assert.equal(plainSink.messages.length, before + 2);
  });
});
