// Mailyard's Receive connectors against swaks, a real SMTP client: STARTTLS, AUTH PLAIN and LOGIN
// on the client connector, relay refused for anonymous senders (550 5.7.54), and a message for a
// local mailbox that ends up in its Maildir.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { requirePeers, swaks, makeCertificate, peerTempDir, waitFor, readMaildir, headerValues } from '../helpers/peers.js';
import { startMailyard, type MailyardInstance } from './mailyard.js';

const USER = { address: 'alice@contoso.test', password: 'interop-Secret-1' };

describe('interop: swaks → Mailyard Receive connectors', () => {
  let instance: Promise<MailyardInstance> | undefined;
  let certDir: string | undefined;
  const mailyard = (): Promise<MailyardInstance> => {
    instance ??= (async () => {
      certDir = await peerTempDir('mailyard-cert');
      const tls = await makeCertificate(certDir, ['mailyard.interop.test', '127.0.0.1']);
      return startMailyard({ tls, users: [USER] });
    })();
    return instance;
  };
  after(async () => {
    if (instance) await (await instance.catch(() => null))?.stop();
    if (certDir) await rm(certDir, { recursive: true, force: true });
  });

  test('an anonymous sender delivers over STARTTLS to a local mailbox, which gets the message in its Maildir', async (t) => {
    if (!requirePeers(t, ['swaks', 'openssl'])) return;
    const my = await mailyard();
    const r = await swaks([
      '--server', `127.0.0.1:${my.internetPort}`, '--tls',
      '--from', 'sender@fabrikam.example', '--to', 'julia@contoso.test',
      '--header', 'Subject: interop swaks tls', '--body', 'over STARTTLS from swaks',
    ]);
    assert.equal(r.code, 0, r.transcript);
    assert.match(r.transcript, /<-\s+220 .*mailyard\.interop\.test/);
    assert.match(r.transcript, /STARTTLS/);
    assert.match(r.transcript, /<~\s+250 /); // the reply to DATA, read over TLS
    const msgs = await waitFor('the message in julia\'s Maildir', async () => {
      const m = await readMaildir(my.maildirOf('julia@contoso.test'));
      return m.length > 0 ? m : null;
    }, 20_000);
    assert.match(msgs[0]!.raw, /Subject: interop swaks tls/);
    assert.match(msgs[0]!.raw, /over STARTTLS from swaks/);
    assert.ok(headerValues(msgs[0]!.raw, 'Received').some((v) => /\bby mailyard\.interop\.test\b/.test(v) && /TLS/i.test(v)), msgs[0]!.raw);
  });

  test('an anonymous sender may not relay to a domain that is not accepted: 550 5.7.54', async (t) => {
    if (!requirePeers(t, ['swaks', 'openssl'])) return;
    const my = await mailyard();
    const r = await swaks(['--server', `127.0.0.1:${my.internetPort}`, '--from', 'sender@fabrikam.example', '--to', 'someone@elsewhere.example']);
    assert.notEqual(r.code, 0);
    assert.match(r.transcript, /<\*\*\s+550 5\.7\.54 SMTP; Unable to relay recipient in non-accepted domain/);
  });

  for (const mech of ['PLAIN', 'LOGIN'] as const) {
    test(`a user authenticates with AUTH ${mech} after STARTTLS on the client connector and may relay`, async (t) => {
      if (!requirePeers(t, ['swaks', 'openssl'])) return;
      const my = await mailyard();
      const r = await swaks([
        '--server', `127.0.0.1:${my.clientPort}`, '--tls', '--auth', mech,
        '--auth-user', USER.address, '--auth-password', USER.password,
        '--from', USER.address, '--to', 'partner@elsewhere.example',
      ]);
      assert.equal(r.code, 0, r.transcript);
      assert.match(r.transcript, /<~\s+235 /);
      assert.match(r.transcript, /<~\s+250 .*\r?\n.*QUIT/s);
      assert.doesNotMatch(r.transcript, /550 5\.7\.54/);
    });
  }

  test("a wrong password is refused with 535 (Exchange's 5.7.3 Authentication unsuccessful)", async (t) => {
    if (!requirePeers(t, ['swaks', 'openssl'])) return;
    const my = await mailyard();
    const r = await swaks([
      '--server', `127.0.0.1:${my.clientPort}`, '--tls', '--auth', 'PLAIN',
      '--auth-user', USER.address, '--auth-password', 'not-the-password',
      '--from', USER.address, '--to', 'partner@elsewhere.example',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.transcript, /<~\*\s+535 5\.7\.[38] /);
    assert.doesNotMatch(r.transcript, /235 /);
  });

  test('a user submits with AUTH on the client connector to a local mailbox and it lands in the recipient\'s Maildir', async (t) => {
    if (!requirePeers(t, ['swaks', 'openssl'])) return;
    const my = await mailyard();
    const r = await swaks([
      '--server', `127.0.0.1:${my.clientPort}`, '--tls', '--auth', 'LOGIN',
      '--auth-user', USER.address, '--auth-password', USER.password,
      '--from', USER.address, '--to', 'bob@contoso.test', '--header', 'Subject: submitted with auth',
    ]);
    assert.equal(r.code, 0, r.transcript);
    const [msg] = await waitFor('the submission in bob\'s Maildir', async () => {
      const m = await readMaildir(my.maildirOf('bob@contoso.test'));
      return m.length > 0 ? m : null;
    }, 20_000);
    assert.match(msg!.raw, /Subject: submitted with auth/);
    assert.match(msg!.raw, /^Return-Path: <alice@contoso\.test>/m);
  });

  test('the receive protocol log shows the conversations and never the password or the AUTH payload', async (t) => {
    if (!requirePeers(t, ['swaks', 'openssl'])) return;
    const my = await mailyard();
    const r = await swaks([
      '--server', `127.0.0.1:${my.clientPort}`, '--tls', '--auth', 'PLAIN',
      '--auth-user', USER.address, '--auth-password', USER.password,
      '--from', USER.address, '--to', 'bob@contoso.test', '--header', 'Subject: logged session',
    ]);
    assert.equal(r.code, 0, r.transcript);
    const payload = Buffer.from(`\0${USER.address}\0${USER.password}`).toString('base64');
    const dir = join(my.dir, 'log', 'FrontEnd', 'ProtocolLog', 'SmtpReceive');
    const text = await waitFor('a protocol log line for the logged session', async () => {
      const files = (await readdir(dir)).filter((f) => /^RECV\d{10}-\d+\.LOG$/.test(f));
      const all = (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).join('\n');
      return /Interop Client/.test(all) && /AUTH/i.test(all) && /QUIT/.test(all) ? all : null;
    }, 10_000);
    assert.match(text, /^#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context/m);
    assert.ok(!text.includes(USER.password), 'the password is not in the protocol log');
    assert.ok(!text.includes(payload), 'the AUTH PLAIN payload is not in the protocol log');
  });

  test('AUTH is not offered on the client connector before STARTTLS', async (t) => {
    if (!requirePeers(t, ['swaks', 'openssl'])) return;
    const my = await mailyard();
    const r = await swaks(['--server', `127.0.0.1:${my.clientPort}`, '--quit-after', 'EHLO']);
    assert.equal(r.code, 0, r.transcript);
    assert.match(r.transcript, /250-STARTTLS|250 STARTTLS/);
    assert.doesNotMatch(r.transcript, /250[- ]AUTH/);
  });
});
