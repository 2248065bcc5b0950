import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PressureLevel } from '../../../src/policy/back-pressure.js';
import { LineClient } from '../../helpers/smtp-client.js';
import { message, startHarness, type Harness } from './harness.js';

describe('back pressure at MAIL FROM', () => {
  let h: Harness;
  let level: PressureLevel = 'Normal';
  before(async () => {
    h = await startHarness({
      pressure: () => level,
      connectors: [
        { name: 'Internet', usage: 'Internet' },
        // Organization servers: proven by the connector (ExternalAuthoritative), not anonymous.
        // (on its own address: two port-0 bindings on one address would both match either port)
        { name: 'Internal', bindings: ['127.0.0.2:0'], authMechanism: ['ExternalAuthoritative'], permissionGroups: ['ExchangeServers'] },
      ],
    });
  });
  after(async () => h.close());

  async function hello(connector: string): Promise<LineClient> {
    const c = await LineClient.connect(h.port(connector), { host: connector === 'Internal' ? '127.0.0.2' : '127.0.0.1' });
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.fabrikam.com')).code, 250);
    return c;
  }

  async function send(c: LineClient): Promise<string> {
    const mail = await c.cmd('MAIL FROM:<ann@fabrikam.com>');
    if (mail.code !== 250) return mail.raw;
    assert.equal((await c.cmd('RCPT TO:<bob@contoso.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    return (await c.cmd(`${message({ Subject: 'pressure' })}.`)).raw;
  }

  test('High refuses every sender with 452 4.3.1 and keeps the session; Normal takes mail again on it', async () => {
    level = 'High';
    const anon = await hello('Internet');
    const server = await hello('Internal');
    const before = h.intake.stored.length;
    assert.equal(await send(anon), '452 4.3.1 Insufficient system resources');
    assert.equal(await send(server), '452 4.3.1 Insufficient system resources');
    assert.equal(h.intake.stored.length, before, 'nothing was queued');
    const lines = (await h.protocolLinesUntil(/Back pressure High/)).join('\n');
    assert.match(lines, /Back pressure High: no new mail is accepted from this session now/);

    level = 'Normal';
    assert.match(await send(anon), /^250 2\.6\.0 /);
    assert.match(await send(server), /^250 2\.6\.0 /);
    assert.equal(h.intake.stored.length, before + 2);
    anon.close();
    server.close();
  });

  test('Medium refuses anonymous senders only: organization servers still get through', async () => {
    level = 'Medium';
    const anon = await hello('Internet');
    const server = await hello('Internal');
    assert.equal(await send(anon), '452 4.3.1 Insufficient system resources');
    assert.match(await send(server), /^250 2\.6\.0 /);
    level = 'Normal';
    anon.close();
    server.close();
  });
});
