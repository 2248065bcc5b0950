/**
 * The relay floor for `npm run bench -- --floor`: the least a relay built on Mailyard's required
 * libraries can do per message, to tell how much of Mailyard's cost per message is its own.
 *
 * smtp-server receives (with its fixed 100 ms greeting pause removed, as Mailyard removes it), each
 * message is appended to one file with a group-committed write + fdatasync before the 250 (the
 * helper Mailyard's content journal uses), and nodemailer's SMTPConnection forwards it over up to 20
 * reused connections to the next hop. Nothing else: no routing, no queue state or records, no
 * retries, no logs, no limits, no permissions. It is not a product and loses mail on any error;
 * it exists only to be measured.
 *
 * Usage: node --import tsx test/bench/floor.ts --listen 127.0.0.1:PORT --next-hop 127.0.0.1:PORT --file PATH
 */
import { open } from 'node:fs/promises';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection as InboundConnection } from 'smtp-server/lib/smtp-connection.js';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { GroupCommit, appendDurably } from '../../src/platform/group-commit.js';

const argv = process.argv.slice(2);
const arg = (name: string): string => {
  const i = argv.indexOf(name);
  if (i < 0 || !argv[i + 1]) throw new Error(`missing ${name}`);
  return argv[i + 1]!;
};
const endpoint = (text: string) => {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
};
const listen = endpoint(arg('--listen'));
const nextHop = endpoint(arg('--next-hop'));
const file = await open(arg('--file'), 'a');

// Greeting without smtp-server's fixed 100 ms pause (Mailyard's receive connection does the same).
(InboundConnection.prototype as unknown as { init(): void }).init = function (this: { _setListeners(cb: () => void): void; connectionReady(): void }) {
  this._setListeners(() => this.connectionReady());
};

// Group commit, with Mailyard's own helper: appends arriving while a write + fdatasync runs share
// the next one.
const journal = new GroupCommit<Buffer, number>((batch) => appendDurably(file, batch, true));

// Forwarding over reused connections, one transaction at a time on each.
interface Outgoing {
  readonly envelope: { from: string; to: string[] };
  readonly data: Buffer;
}
const idle: SMTPConnection[] = [];
const backlog: Outgoing[] = [];
let opened = 0;
function openConnection(): void {
  opened++;
  const conn = new SMTPConnection({ host: nextHop.host, port: nextHop.port, name: 'floor.relay-bench.test', logger: false });
  conn.on('error', (err: Error) => console.error(`floor: next hop: ${err.message}`));
  conn.connect(() => {
    idle.push(conn);
    forward();
  });
}
function forward(): void {
  if (backlog.length && !idle.length && opened < 20) openConnection();
  while (idle.length && backlog.length) {
    const conn = idle.pop()!;
    const m = backlog.shift()!;
    conn.send(m.envelope, m.data, (err) => {
      if (err) console.error(`floor: send: ${err.message}`);
      idle.push(conn);
      forward();
    });
  }
}

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  disableReverseLookup: true,
  logger: false,
  size: 64 * 1024 * 1024,
  onData(stream, session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const data = Buffer.concat(chunks);
      const envelope = {
        from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        to: session.envelope.rcptTo.map((r) => r.address),
      };
      journal.add(data).then(
        () => {
          backlog.push({ envelope, data });
          forward();
          callback(null, 'queued');
        },
        (err: Error) => callback(err),
      );
    });
  },
});
server.listen(listen.port, listen.host);
process.on('SIGTERM', () => process.exit(0));
