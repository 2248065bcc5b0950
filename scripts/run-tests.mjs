#!/usr/bin/env node
// Runs the test files under the given folders (default: test/unit, test/component, test/interop)
// with node's own test runner and tsx. Node 20's runner takes no globs, so the files are listed here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const dirs = roots.length ? roots : ['test/unit', 'test/component', 'test/interop'];

function walk(p, out) {
  let st;
  try { st = statSync(p); } catch { return out; }
  if (st.isFile()) { if (p.endsWith('.test.ts')) out.push(p); return out; }
  for (const e of readdirSync(p).sort()) walk(join(p, e), out);
  return out;
}
const files = dirs.flatMap((d) => walk(d, []));
if (files.length === 0) { console.error('no test files found under', dirs.join(', ')); process.exit(1); }
const args = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...flags, ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, MAILYARD_TEST: '1' } });
process.exit(r.status ?? 1);
