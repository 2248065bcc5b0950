// The import-boundary rules of eslint.config.js, driven through ESLint's own API with source text
// placed at chosen paths (nothing is written to disk). Each row: a file, what it imports, and
// whether the lint run must report a boundary problem.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: process.cwd() });

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

const cases: Array<{ name: string; file: string; code: string; expect: RegExp | null }> = [
  { name: 'model imports nothing from other src folders', file: 'src/model/x.ts', code: "import { a } from '../config/index.js';\nvoid a;", expect: /src\/model\/ may import only src\/model\// },
  { name: 'model may import model', file: 'src/model/x.ts', code: "import { a } from './reply.js';\nvoid a;", expect: null },
  { name: 'config may import model', file: 'src/config/x.ts', code: "import { a } from '../model/index.js';\nvoid a;", expect: null },
  { name: 'config must not import a runtime module', file: 'src/config/x.ts', code: "import { a } from '../queue/spool.js';\nvoid a;", expect: /src\/config\/ may import only/ },
  { name: 'a pure policy module must not load node:fs', file: 'src/policy/x.ts', code: "import { readFileSync } from 'node:fs';\nvoid readFileSync;", expect: /pure module src\/policy\/x\.ts must not load 'node:fs'/ },
  { name: 'a pure module must not load pino at run time', file: 'src/queue/scheduler.ts', code: "import pino from 'pino';\nvoid pino;", expect: /must not load 'pino'/ },
  { name: 'a pure module may import pino types', file: 'src/queue/state.ts', code: "import type { Logger } from 'pino';\nexport type L = Logger;", expect: null },
  { name: 'a pure module must not read the clock', file: 'src/routing/resolve.ts', code: 'export const t = Date.now();', expect: /time as a parameter/ },
  { name: 'a pure module must not call new Date() without arguments', file: 'src/delivery/classify.ts', code: 'export const t = new Date();', expect: /time as a parameter/ },
  { name: 'the categorizer is not pure and may use the clock', file: 'src/routing/categorizer.ts', code: 'export const t = Date.now();', expect: null },
  { name: 'the categorizer may use the queue records', file: 'src/routing/categorizer.ts', code: "import { a } from '../queue/record.js';\nvoid a;", expect: null },
  { name: 'a pure module must not load an impure sibling', file: 'src/delivery/smtp/mx.ts', code: "import { a } from '../lmtp.js';\nvoid a;", expect: /must not load impure module src\/delivery\/lmtp\.ts/ },
  { name: 'receive must not import delivery', file: 'src/receive/connector.ts', code: "import { a } from '../delivery/lmtp.js';\nvoid a;", expect: /src\/receive\/ must not import src\/delivery\// },
  { name: 'receive must not import queue internals', file: 'src/receive/intake.ts', code: "import { a } from '../queue/spool.js';\nvoid a;", expect: /src\/receive\/ must not import src\/queue\// },
  { name: 'receive may import policy', file: 'src/receive/connector.ts', code: "import { a } from '../policy/index.js';\nvoid a;", expect: null },
  { name: 'delivery must not import the queue', file: 'src/delivery/smtp/session.ts', code: "import { a } from '../../queue/state.js';\nvoid a;", expect: /src\/delivery\/ must not import src\/queue\// },
  { name: 'the queue must not import a concrete delivery agent', file: 'src/queue/manager.ts', code: "import { a } from '../delivery/lmtp.js';\nvoid a;", expect: /src\/queue\/ must not import src\/delivery\// },
  { name: 'the queue may use the classification table', file: 'src/queue/manager.ts', code: "import { a } from '../delivery/classify.js';\nvoid a;", expect: null },
  { name: 'cli must not import the daemon', file: 'src/cli/start.ts', code: "import { a } from '../daemon/index.js';\nvoid a;", expect: /src\/cli\/ must not import src\/daemon\// },
  { name: 'admin must not touch spool files', file: 'src/admin/routes.ts', code: "import { a } from '../queue/spool.js';\nvoid a;", expect: /src\/admin\/ must not import src\/queue\/spool\.ts/ },
  { name: 'only daemon and cli read process.env', file: 'src/queue/manager.ts', code: 'export const v = process.env.X;', expect: /process\.env/ },
  { name: 'only the daemon installs signal handlers', file: 'src/receive/service.ts', code: "process.on('SIGHUP', () => undefined);", expect: /signal and process handlers/ },
  { name: 'only daemon and cli decide the exit code', file: 'src/queue/manager.ts', code: 'process.exit(1);', expect: /exit code/ },
  { name: 'the daemon may read process.env', file: 'src/daemon/start.ts', code: 'export const v = process.env.X;', expect: null },
  { name: 'tests are not bound by the src table', file: 'test/unit/x.test.ts', code: "import { a } from '../../src/queue/spool.js';\nvoid a;", expect: null },
];

describe('eslint import boundaries', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const found = await problems(c.file, c.code);
      if (c.expect === null) assert.deepEqual(found, []);
      else assert.ok(found.some((m) => c.expect!.test(m)), `expected ${c.expect} in ${JSON.stringify(found)}`);
    });
  }
});
