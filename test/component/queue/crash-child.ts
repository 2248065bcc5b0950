/**
 * Child process for the crash test: starts a Transport on the spool dir given in argv[2] and
 * accepts messages as fast as it can (8 at a time), printing "ACK <id>" after each durable accept.
 * Its delivery agent never answers, so acknowledged messages stay queued. The parent kills it -9.
 */
import { Transport } from '../../../src/queue/manager.js';
import { RecordingAgent, logger, makeConfig, message, request, CaptureTracking } from './helpers.js';

const dir = process.argv[2]!;
const agent = new RecordingAgent(() => new Promise(() => {}));
const t = new Transport({ config: makeConfig(dir), logger, tracking: new CaptureTracking(), agents: agent.factory });
await t.start();
let n = 0;
async function loop(): Promise<void> {
  for (;;) {
    const i = n++;
    if (i > 5000) return;
    const res = await t.intake.accept(request('ann@fabrikam.example', [`r${i}@tailspin.example`, `m${i}@contoso.com`]), message(`crash ${i}`, `body ${i}\n`.repeat(50)));
    process.stdout.write(`ACK ${res.id}\n`);
  }
}
await Promise.all(Array.from({ length: 8 }, loop));
