/**
 * Queue benchmarks (never asserts; prints numbers):
 *   1. intake -> spool -> categorizer -> delivery to a sink agent: messages/s with fsync on, and
 *      fsyncs per message (file fsyncs + directory fsync rounds), at 20 concurrent writers.
 *   2. start-up with 100,000 queued messages: load time and RSS, in a fresh child process.
 * Run: node --import tsx test/bench/queue.ts [--messages N] [--queued N] [--no-fsync]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema } from '../../src/config/schema.js';
import { applyDefaults } from '../../src/config/defaults.js';
import { Transport } from '../../src/queue/manager.js';
import { silentLogger } from '../../src/logging/logger.js';
import { nullTrackingSink } from '../../src/model/tracking.js';
import { newMessageId } from '../../src/model/ids.js';
import { encodeRecord, type MessageRecord } from '../../src/queue/record.js';
import type { DeliveryAgent, RecipientOutcome } from '../../src/model/outcome.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : dflt;
};
const fsync = !args.includes('--no-fsync');

function config(dataDir: string) {
  return applyDefaults(
    configSchema.parse({
      server: { name: 'BENCH', fqdn: 'bench.example', dataDir, logDir: join(dataDir, 'logs') },
      sendConnectors: [{ name: 'Sink', addressSpaces: ['*'] }],
      transportService: { fsyncEnabled: fsync },
    }),
    '<bench>',
    [],
  );
}

const OK: RecipientOutcome = { kind: 'delivered', reply: { code: 250, enhanced: '2.0.0', text: 'OK' } };
const sink: DeliveryAgent = { deliver: async (b) => ({ outcomes: new Map(b.recipients.map((r) => [r.address, OK])) }) };

async function throughput(n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mailyard-bench-'));
  try {
    const t = new Transport({ config: config(dir), logger: silentLogger(), tracking: nullTrackingSink, agents: () => sink });
    await t.start();
    const body = Buffer.from(`From: a@client.example\r\nTo: b@dest.example\r\nSubject: bench\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(1) + `${'y'.repeat(76)}\r\n`.repeat(26));
    let next = 0;
    const t0 = process.hrtime.bigint();
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        await t.intake.accept(
          { envelope: { mailFrom: 'sender@client.example', recipients: [{ address: `${i}rcpt@dest.example` }], body: '8BITMIME', smtputf8: false }, source: { kind: 'smtp', connector: 'bench' }, receivedAt: new Date(), prepend: 'Received: from bench\r\n' },
          body,
        );
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    const accepted = Number(process.hrtime.bigint() - t0) / 1e9;
    while (t.stats().messages > 0) await new Promise((r) => setTimeout(r, 5));
    const done = Number(process.hrtime.bigint() - t0) / 1e9;
    const fsyncs = t.spool.fileSyncs + t.spool.sharedSyncs;
    console.log(`intake (fsync ${fsync ? 'on' : 'off'}, 20 writers, ${n} x ${body.length} B): accepted ${(n / accepted).toFixed(0)} msg/s; accepted+delivered+removed ${(n / done).toFixed(0)} msg/s; fsyncs/msg ${(fsyncs / n).toFixed(2)} (content ${(t.spool.fileSyncs / n).toFixed(2)}, shared dir/log rounds ${t.spool.sharedSyncs})`);
    await t.stop(1000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function populate(dir: string, n: number): void {
  const root = join(dir, 'queue', 'v1');
  mkdirSync(join(root, 'messages'), { recursive: true });
  mkdirSync(join(root, 'log'), { recursive: true });
  const lines: string[] = [];
  mkdirSync(join(root, 'quarantine'), { recursive: true });
  const body = `From: a@client.example\r\nSubject: queued\r\n\r\n${'z'.repeat(2000)}\r\n`;
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const id = newMessageId(now + i);
    const rec: MessageRecord = {
      v: 1, id, receivedAt: now, mailFrom: 'sender@client.example', body: '8BITMIME', smtputf8: false,
      source: { kind: 'smtp', connector: 'Default Frontend BENCH', client: { address: '127.0.0.1', port: 40000 } },
      size: body.length, subject: 'queued', internetMessageId: `<${id}@client.example>`, hopCount: 1, categorized: true, delayNotified: false, poisonCount: 0, suspended: false, poisoned: false,
      recipients: [{ address: `${i}@dest${i % 50}.example`, status: 'pending', attempts: 1, nextAttemptAt: now + 3_600_000, lastError: '451 4.4.0 bench', route: { deliveryType: 'DnsConnectorDelivery', nextHopDomain: `dest${i % 50}.example`, connector: 'Sink' } }],
    };
    lines.push(encodeRecord(rec));
    writeFileSync(join(root, 'messages', `${id}.eml`), body);
  }
  writeFileSync(join(root, 'log', '0000000001.jsonl'), lines.join(''));
}

async function loadChild(dir: string): Promise<void> {
  global.gc?.();
  const baseRss = process.memoryUsage().rss / 1024 / 1024;
  const t0 = process.hrtime.bigint();
  const t = new Transport({ config: config(dir), logger: silentLogger(), tracking: nullTrackingSink, agents: () => sink });
  await t.start();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  global.gc?.();
  const rss = process.memoryUsage().rss / 1024 / 1024;
  console.log(JSON.stringify({ messages: t.stats().messages, ms: Math.round(ms), rssMB: Math.round(rss), heapMB: Math.round(process.memoryUsage().heapUsed / 1048576), baseRssMB: Math.round(baseRss) }));
  process.exit(0);
}

if (args[0] === '--load-child') {
  await loadChild(args[1]!);
} else {
  await throughput(opt('--messages', 5000));
  const queued = opt('--queued', 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'mailyard-bench-load-'));
  try {
    const p0 = Date.now();
    populate(dir, queued);
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--load-child', dir], { encoding: 'utf8' });
    const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { messages: number; ms: number; rssMB: number; heapMB: number; baseRssMB: number };
    console.log(`start-up with ${res.messages} queued messages (populated in ${((Date.now() - p0) / 1000).toFixed(1)} s): loaded in ${res.ms} ms, RSS ${res.rssMB} MB (before loading ${res.baseRssMB} MB; JS heap after ${res.heapMB} MB)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
