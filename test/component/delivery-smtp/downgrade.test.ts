import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { createSmtpDeliveryAgent, INLINE_MAX_BYTES } from '../../../src/delivery/smtp/agent.js';
import type { DeliveryBatch, DeliveryResult } from '../../../src/model/outcome.js';
import { startSmtpSink, type SinkOptions, type SmtpSink } from '../../helpers/smtp-sink.js';
import { MemoryProtocolLog, makeConfig, signal, silent, useSpoolAndSinks } from './setup.js';
import { binary } from '../../helpers/bytes.js';


/** UTF-8 text with accents, lines that start with a dot, a lone "." line and one very long line. */
function text8bit(lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    if (i % 97 === 0) out.push('.');
    else if (i % 31 === 0) out.push(`.starts with a dot ${i} \u00e9`);
    else if (i === 500) out.push('\u00fc'.repeat(1200));
    else out.push(`${i}: Gr\u00fc\u00dfe aus K\u00f6ln, caf\u00e9 = d\u00e9j\u00e0 vu \u2014 ${'z'.repeat(i % 50)}`);
  }
  return out.join('\r\n') + '\r\n';
}

const RECEIVED = 'Received: from client.contoso.test (10.0.0.5) by mail.contoso.test with ESMTP id 0A1B2C3D; Mon, 23 Nov 2026 21:00:00 +0000\r\n';

/** A multipart/mixed message: an 8-bit text part and an 8-bit ("binary") attachment. */
function bigMultipart(text: string, attachment: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`${RECEIVED}From: a@contoso.test\r\nTo: ann@fabrikam.test\r\nSubject: big downgrade\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="=_part_0"\r\n\r\nThis is a MIME message.\r\n`),
    Buffer.from(`--=_part_0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}\r\n`, 'utf8'),
    Buffer.from('--=_part_0\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=data.bin\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
    attachment,
    Buffer.from('\r\n--=_part_0--\r\n'),
  ]);
}

/** The DATA section of a plaintext session's raw bytes: after the 354's DATA command up to the "." line. */
function dataSection(wire: Buffer): string {
  const s = wire.toString('latin1');
  const start = s.search(/\r\nDATA\r\n/i) + 8;
  const end = s.indexOf('\r\n.\r\n', start);
  assert.ok(start >= 8 && end > start, 'DATA section found on the wire');
  return s.slice(start, end + 2);
}

describe('8BITMIME downgrade of messages of any size (hop without 8BITMIME)', () => {
  const fx = useSpoolAndSinks();
  const sink = fx.sink;
  const text = text8bit(9000);
  const attachment = binary(200_000);
  const message = bigMultipart(text, attachment);

  async function deliver(s: SmtpSink, body: Buffer, opts: { envelope?: Record<string, unknown>; downgradeMaxBytes?: number } = {}): Promise<DeliveryResult> {
    const { config, connector } = makeConfig({ dnsRoutingEnabled: false, smartHosts: [`127.0.0.1:${s.port}`] });
    const agent = createSmtpDeliveryAgent({
      config,
      connector,
      resolver: null as never,
      logger: silent,
      protocolLog: new MemoryProtocolLog(),
      ...(opts.downgradeMaxBytes !== undefined ? { downgradeMaxBytes: opts.downgradeMaxBytes } : {}),
    });
    try {
      const b: DeliveryBatch = await fx.spool().batch({ deliveryType: 'SmartHostConnectorDelivery', nextHopDomain: 'smarthost', recipients: ['ann@fabrikam.test'], body, envelope: { body: '8BITMIME', ...opts.envelope } });
      return await agent.deliver(b, signal(20_000));
    } finally {
      await agent.close?.();
    }
  }

  test('a ~600 KB 8-bit multipart is converted and delivered: 7-bit wire, same text and attachment bytes', async () => {
    assert.ok(message.length > 550_000 && message.length > INLINE_MAX_BYTES, `test message is ${message.length} bytes`);
    const s7 = await sink({ eightBitMime: false });
    const r = await deliver(s7, message);
    const o = r.outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind, 'delivered', JSON.stringify(o));
    assert.equal(s7.messages.length, 1);

    // What went over the wire: 7-bit only, no BODY=8BITMIME, CRLF lines of at most 998 octets.
    const wire = Buffer.concat(s7.wire.at(-1)!);
    assert.ok(wire.every((b) => b < 0x80), 'no byte >= 0x80 on the wire');
    assert.doesNotMatch(wire.toString('latin1'), /BODY=8BITMIME/i);
    assert.equal(s7.messages[0]!.mailArgs.BODY, undefined);
    const data = dataSection(wire);
    assert.doesNotMatch(data.replace(/\r\n/g, ''), /[\r\n]/, 'CRLF line ends only');
    const lines = data.split('\r\n');
    assert.ok(lines.every((l) => l.length <= 998), 'no line over 998 octets');
    // Dot-stuffed exactly once on the wire: the lone "." lines of the text went out as "..".
    assert.ok(lines.includes('..'), 'a "." line is doubled on the wire');
    assert.ok(!lines.includes('...'), 'never stuffed twice');

    // What the peer got (dot-unstuffed): our Received first, encodings declared, same content.
    const got = s7.messages[0]!.data;
    assert.ok(got.toString('latin1').startsWith(RECEIVED), 'our Received header stays first');
    assert.match(got.toString('latin1'), /Content-Transfer-Encoding: quoted-printable\r\n/);
    assert.match(got.toString('latin1'), /Content-Transfer-Encoding: base64\r\n/);
    const parsed = await simpleParser(got);
    assert.equal(parsed.subject, 'big downgrade');
    assert.equal(parsed.text, text.replace(/\r\n/g, '\n'));
    assert.equal(parsed.attachments.length, 1);
    assert.equal(parsed.attachments[0]!.filename, 'data.bin');
    assert.ok(parsed.attachments[0]!.content.equals(attachment), 'attachment bytes identical');
  });

  test('a large single-part 8-bit text message is converted too (quoted-printable, MIME-Version added)', async () => {
    const body = text8bit(6000);
    const single = Buffer.from(`${RECEIVED}From: a@contoso.test\r\nSubject: single\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`, 'utf8');
    assert.ok(single.length > INLINE_MAX_BYTES);
    const s7 = await sink({ eightBitMime: false });
    const r = await deliver(s7, single, { envelope: { body: '7BIT' } });
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.ok(Buffer.concat(s7.wire.at(-1)!).every((b) => b < 0x80), 'no byte >= 0x80 on the wire');
    const got = s7.messages[0]!.data.toString('latin1');
    assert.ok(got.startsWith(`${RECEIVED}From: a@contoso.test\r\nSubject: single\r\nContent-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n`), got.slice(0, 400));
    assert.equal((await simpleParser(s7.messages[0]!.data)).text, body.replace(/\r\n/g, '\n'));
  });

  test('what cannot be converted still fails with 554 5.6.3 at any size, and nothing is sent', async () => {
    const header8bit = Buffer.concat([Buffer.from('Subject: caf\u00e9\r\n', 'utf8'), message]);
    const rfc822 = Buffer.concat([
      Buffer.from('MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n'),
      message,
      Buffer.from('\r\n--b--\r\n'),
    ]);
    const s7 = await sink({ eightBitMime: false });
    for (const [name, body] of [
      ['8-bit header field', header8bit],
      ['8-bit message/rfc822 part', rfc822],
    ] as const) {
      assert.ok(body.length > INLINE_MAX_BYTES);
      const o = (await deliver(s7, body)).outcomes.get('ann@fabrikam.test');
      assert.equal(o?.kind === 'failed' && `${o.reply.code} ${o.reply.enhanced}`, '554 5.6.3', name);
    }
    assert.equal(s7.messages.length, 0);
  });

  test('over the conversion limit: 554 5.6.3, nothing sent (the limit is read from the file, not guessed)', async () => {
    const s7 = await sink({ eightBitMime: false });
    const o = (await deliver(s7, message, { downgradeMaxBytes: message.length - 1 })).outcomes.get('ann@fabrikam.test');
    assert.equal(o?.kind === 'failed' && `${o.reply.code} ${o.reply.enhanced}`, '554 5.6.3');
    assert.match(o?.kind === 'failed' ? o.detail : '', /larger than/);
    assert.equal(s7.messages.length, 0);
    // Exactly at the limit it goes.
    const ok = (await deliver(s7, message, { downgradeMaxBytes: message.length })).outcomes.get('ann@fabrikam.test');
    assert.equal(ok?.kind, 'delivered');
  });

  test('a hop with 8BITMIME gets the large message as it is (only bare CR/LF made CRLF), with BODY=8BITMIME', async () => {
    const s8 = await sink();
    const r = await deliver(s8, message);
    assert.equal(r.outcomes.get('ann@fabrikam.test')?.kind, 'delivered');
    assert.equal(s8.messages[0]!.mailArgs.BODY, '8BITMIME');
    const normalised = Buffer.from(message.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
    assert.ok(s8.messages[0]!.data.equals(normalised), 'same bytes, not converted');
  });
});
