import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LineClient } from '../../helpers/smtp-client.js';
import { message, startHarness, type Harness } from './harness.js';

describe('bad input never crashes the service or disturbs another session', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ connectors: [{ name: 'Internet', usage: 'Internet', maxProtocolErrors: 'unlimited' }] });
  });
  after(async () => h.close());

  const addressCases: Array<[string, string]> = [
    ['RCPT TO:<bob@contoso.com@elsewhere.example>', '501 5.1.3 Invalid address'],
    ['RCPT TO:<"bob@elsewhere.example"@contoso.com>', '501 5.1.3 Invalid address'],
    ['RCPT TO:<bob@contoso.com.>', '501 5.1.3 Invalid address'],
    ['RCPT TO:<bob@[127.0.0.1]>', '550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain'],
    ['RCPT TO:<@contoso.com:bob@elsewhere.example>', '550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain'],
    ['RCPT TO:bob@contoso.com', '501 5.1.3 Invalid address'],
    ['RCPT TO:<bob\u200b@contoso.com>', '501 5.1.3 Invalid address'],
    ['RCPT TO:<postmaster>', '250 2.1.5 Recipient OK'],
    ['RCPT TO:<bob%elsewhere.example@contoso.com>', '250 2.1.5 Recipient OK'],
  ];
  test('address syntax tricks get the right reply', async () => {
    const c = await LineClient.connect(h.port());
    await c.read();
    await c.cmd('EHLO x.example');
    assert.equal((await c.cmd('MAIL FROM:<ann@fabrikam.com>')).code, 250);
    for (const [cmd, expect] of addressCases) assert.equal((await c.cmd(cmd)).raw, expect, cmd);
    c.close();
  });

  test('garbage on several connections while a good session delivers', async () => {
    // a small deterministic PRNG: the same bytes on every run
    let seed = 0x2f6b1d;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const noisy = await Promise.all(Array.from({ length: 4 }, () => LineClient.connect(h.port())));
    for (const n of noisy) {
      await n.read();
      for (let i = 0; i < 20; i++) {
        const len = 1 + Math.floor(rand() * 300);
        n.write(Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256))));
        if (rand() < 0.5) n.write('\r\n');
      }
      n.write('EHLO\r\nMAIL FROM:<>\r\nDATA\r\n\0\0\0\r\n.\r\n');
    }
    const good = await LineClient.connect(h.port());
    await good.read();
    await good.cmd('EHLO good.example');
    await good.cmd('MAIL FROM:<ann@fabrikam.com>');
    await good.cmd('RCPT TO:<bob@contoso.com>');
    await good.cmd('DATA');
    const r = await good.cmd(`${message({ Subject: 'survivor' })}.`);
    assert.equal(r.code, 250);
    assert.match(h.intake.stored.at(-1)!.content, /Subject: survivor/);
    for (const n of noisy) n.close();
    good.close();
    const again = await LineClient.connect(h.port());
    assert.equal((await again.read()).code, 220);
    again.close();
  });
});
