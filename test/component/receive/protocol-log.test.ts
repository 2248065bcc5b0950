import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createProtocolLog } from '../../../src/logging/protocol-log.js';
import type { ProtocolEvent } from '../../../src/model/protocol.js';

const limits = {
  receiveProtocolLogMaxAge: 30 * 86_400_000,
  receiveProtocolLogMaxDirectorySize: 1_000_000,
  receiveProtocolLogMaxFileSize: 600,
  sendProtocolLogMaxAge: 30 * 86_400_000,
  sendProtocolLogMaxDirectorySize: 1_000_000,
  sendProtocolLogMaxFileSize: 1_000_000,
};

const ev = (seq: number, data: string): ProtocolEvent => ({
  timestamp: new Date(),
  connectorId: 'EX01\\Default Frontend EX01',
  sessionId: '08DC3CF1A2B4C6D8',
  sequence: seq,
  localEndpoint: '127.0.0.1:25',
  remoteEndpoint: '127.0.0.1:40000',
  event: '<',
  data,
});

test('protocol log files per service, with headers, size rolling and pruning', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mailyard-plog-'));
  try {
    const recvDir = join(dir, 'FrontEnd', 'ProtocolLog', 'SmtpReceive');
    const log = createProtocolLog(dir, limits, pino({ level: 'silent' }));
    log.write('FrontEndReceive', ev(0, 'EHLO a'));
    // flushed within a second without close()
    const deadline = Date.now() + 3000;
    let names: string[] = [];
    while (Date.now() < deadline) {
      names = await readdir(recvDir).catch(() => []);
      if (names.length && (await readFile(join(recvDir, names[0]!), 'utf8')).includes('EHLO a')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(names.length, 1);
    assert.match(names[0]!, /^RECV\d{10}-1\.LOG$/);
    const first = await readFile(join(recvDir, names[0]!), 'utf8');
    assert.match(first, /^#Software: Mailyard\r\n#Version: 15\.0\.0\.0\r\n#Log-type: SMTP Receive Protocol Log\r\n#Date: .*\r\n#Fields: date-time,/);

    // exceed the 600-byte file limit: a second instance for the same hour
    for (let i = 1; i < 8; i++) log.write('FrontEndReceive', ev(i, `MAIL FROM:<user${i}@example.com>`));
    await log.flush();
    log.write('FrontEndReceive', ev(9, 'QUIT'));
    log.write('HubSend', { ...ev(0, 'EHLO b'), event: '>', connectorId: 'To Internet' });
    await log.close();
    names = (await readdir(recvDir)).sort();
    assert.ok(names.length >= 2, names.join());
    assert.match(names[1]!, /-2\.LOG$/);
    for (const n of names) assert.match(await readFile(join(recvDir, n), 'utf8'), /^#Software: Mailyard\r\n/);
    const sendNames = await readdir(join(dir, 'Hub', 'ProtocolLog', 'SmtpSend'));
    assert.match(sendNames[0]!, /^SEND\d{10}-1\.LOG$/);
    assert.match(await readFile(join(dir, 'Hub', 'ProtocolLog', 'SmtpSend', sendNames[0]!), 'utf8'), /#Log-type: SMTP Send Protocol Log/);

    // pruning by age: an old file disappears when a new file is opened
    const old = join(recvDir, 'RECV2001010100-1.LOG');
    await writeFile(old, '#old\r\n');
    const longAgo = new Date('2001-01-01T00:00:00Z');
    await utimes(old, longAgo, longAgo);
    const log2 = createProtocolLog(dir, limits, pino({ level: 'silent' }));
    log2.write('FrontEndReceive', ev(0, 'NOOP'));
    await log2.close();
    assert.ok(!(await readdir(recvDir)).includes('RECV2001010100-1.LOG'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
