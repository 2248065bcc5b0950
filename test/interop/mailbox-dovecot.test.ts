// Mailbox delivery to a real Dovecot: Mailyard hands messages for its Authoritative domain to
// Dovecot over LMTP, and the recipient reads them back over IMAP, as a mail client would. An
// unknown mailbox is refused by Dovecot per recipient and comes back to the sender as an NDR.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { requirePeers, startDovecot, swaks, waitFor, readMaildir } from '../helpers/peers.js';
import { startMailyard } from './mailyard.js';

describe('interop: Mailyard → Dovecot LMTP → IMAP', () => {
  test('a message for a local mailbox is delivered over LMTP and read back over IMAP, sub-address included', async (t) => {
    if (!requirePeers(t, ['dovecot', 'swaks'])) return;
    const dv = await startDovecot([{ address: 'julia@contoso.test', password: 'imap-Pass-3' }]);
    t.after(() => dv.stop());
    const my = await startMailyard({
      mailboxDelivery: ['  type: lmtp', `  lmtp: { host: 127.0.0.1, port: ${dv.lmtpPort} }`].join('\n'),
    });
    t.after(() => my.stop());
    for (const [to, subject] of [['julia@contoso.test', 'first over lmtp'], ['julia+news@contoso.test', 'second, sub-addressed']] as const) {
      const r = await swaks(['--server', `127.0.0.1:${my.internetPort}`, '--from', 'sender@fabrikam.example', '--to', to, '--header', `Subject: ${subject}`, '--body', `body of ${subject}`]);
      assert.equal(r.code, 0, r.transcript);
    }
    await waitFor('two messages in julia\'s Dovecot Maildir', async () => (await readMaildir(dv.maildirOf('julia@contoso.test'))).length >= 2 || null, 30_000, 100);

    const client = new ImapFlow({ host: dv.host, port: dv.imapPort, secure: false, auth: { user: 'julia@contoso.test', pass: 'imap-Pass-3' }, logger: false });
    await client.connect();
    t.after(() => client.logout().catch(() => undefined));
    const lock = await client.getMailboxLock('INBOX');
    try {
      const subjects: string[] = [];
      for await (const msg of client.fetch('1:*', { envelope: true, source: true })) {
        subjects.push(msg.envelope?.subject ?? '');
        const raw = msg.source?.toString() ?? '';
        assert.match(raw, /^Return-Path: <sender@fabrikam\.example>/m);
        assert.match(raw, /body of /);
      }
      assert.deepEqual(subjects.sort(), ['first over lmtp', 'second, sub-addressed']);
    } finally {
      lock.release();
    }
  });

  test('a recipient Dovecot does not know is refused per recipient and the sender gets an NDR', async (t) => {
    if (!requirePeers(t, ['dovecot', 'swaks'])) return;
    const dv = await startDovecot([{ address: 'julia@contoso.test', password: 'imap-Pass-3' }]);
    t.after(() => dv.stop());
    const my = await startMailyard({
      mailboxDelivery: ['  type: lmtp', `  lmtp: { host: 127.0.0.1, port: ${dv.lmtpPort} }`].join('\n'),
    });
    t.after(() => my.stop());
    // julia exists, nobody does not; julia is the sender, so the NDR goes to her mailbox too
    const r = await swaks(['--server', `127.0.0.1:${my.internetPort}`, '--from', 'julia@contoso.test', '--to', 'julia@contoso.test,nobody@contoso.test', '--header', 'Subject: one good one bad']);
    assert.equal(r.code, 0, r.transcript);
    const msgs = await waitFor('the message and the NDR in julia\'s Maildir', async () => {
      const m = await readMaildir(dv.maildirOf('julia@contoso.test'));
      return m.length >= 2 ? m : null;
    }, 30_000, 100);
    const ndr = msgs.find((m) => /multipart\/report/i.test(m.raw));
    assert.ok(ndr, 'an NDR arrived');
    assert.match(ndr.raw, /nobody@contoso\.test/);
    assert.match(ndr.raw, /5\.1\.1/);
    assert.ok(msgs.some((m) => /Subject: one good one bad/.test(m.raw) && !/multipart\/report/i.test(m.raw)));
  });
});
