// ESLint flat config. Two jobs:
//  1. Light style checks on TypeScript (the compiler does the heavy lifting: unused variables,
//     types, exhaustiveness are tsc's business, not the linter's).
//  2. The module boundaries of docs/architecture.md, enforced so that a violation fails `npm test`:
//     which src/ folder may import which, which modules must stay pure (no I/O, no clock), and who
//     may read process.env. The boundary rule resolves each relative import to the file it names,
//     so the table below is written in terms of real paths, not import strings.
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';

const ROOT = dirname(fileURLToPath(import.meta.url));
const SRC = resolve(ROOT, 'src');

// ---------------------------------------------------------------------------------------------
// The boundary table

/** Modules that decide and do no I/O: only model/, config/ and other pure modules at run time. */
const PURE = [
  /^policy\//,
  /^routing\/(?!categorizer\.ts$)/,
  /^queue\/(scheduler|state|record|dsn)\.ts$/,
  /^delivery\/(classify|header-firewall|local-path)\.ts$/,
  /^delivery\/smtp\/(mx|tls-policy)\.ts$/,
  /^logging\/protocol-csv\.ts$/,
];
const isPure = (rel) => PURE.some((re) => re.test(rel));

/** Packages a pure module must not load (type-only imports are fine: they vanish at run time). */
const IMPURE_PACKAGES = new Set([
  'fs', 'fs/promises', 'net', 'tls', 'dns', 'dns/promises', 'dgram', 'child_process', 'http', 'https',
  'http2', 'cluster', 'worker_threads', 'pino', 'prom-client', 'nodemailer', 'smtp-server',
]);

/**
 * For a file in folder `from` (first path segment under src/), the src/ folders it must not import.
 * `*` = everything except the listed `allow`.
 */
const LAYERS = {
  model: { allow: ['model'] },
  config: { allow: ['model', 'config'] },
  platform: { allow: ['model', 'config', 'platform'] },
  policy: { deny: ['receive', 'queue', 'delivery', 'routing', 'logging', 'metrics', 'admin', 'cli', 'daemon', 'pickup', 'users', 'platform'] },
  routing: { deny: ['receive', 'delivery', 'admin', 'cli', 'daemon', 'pickup', 'users'] },
  receive: { deny: ['delivery', 'queue', 'routing', 'admin', 'cli', 'daemon'] },
  pickup: { deny: ['delivery', 'queue', 'routing', 'admin', 'cli', 'daemon'] },
  queue: { deny: ['receive', 'pickup', 'delivery', 'admin', 'cli', 'daemon'] },
  delivery: { deny: ['queue', 'receive', 'pickup', 'routing', 'admin', 'cli', 'daemon'] },
  logging: { deny: ['receive', 'queue', 'delivery', 'routing', 'policy', 'admin', 'cli', 'daemon', 'pickup'] },
  metrics: { allow: ['model', 'config', 'metrics'] },
  users: { allow: ['model', 'config', 'users', 'platform'] },
  admin: { deny: ['receive', 'delivery', 'cli', 'daemon'] },
  cli: { deny: ['daemon', 'receive', 'delivery', 'queue'] },
  daemon: { deny: ['cli'] },
};

/** Exceptions to LAYERS for single files (path under src/ → folders it may import anyway). */
const FILE_ALLOW = {
  // the categorizer is the queue's consumer of routing: it reads and updates queue records
  'routing/categorizer.ts': ['queue'],
};
/** Single target files a folder may import although their folder is denied to it. */
const TARGET_ALLOW = {
  // the queue uses the one classification table, never a concrete delivery agent
  queue: ['delivery/classify.ts'],
};
/** Single target files a folder must not import although their folder is allowed. */
const FILE_DENY = {
  admin: ['queue/spool.ts'],
};

function folderOf(rel) {
  const i = rel.indexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

function layerViolation(fromRel, toRel) {
  const from = folderOf(fromRel);
  const to = folderOf(toRel);
  if (to === '' && toRel === 'main.ts') return 'nothing may import src/main.ts';
  if (from === to) return null;
  if (from === '') return null; // src/main.ts: the entry point wires cli and daemon
  if ((FILE_ALLOW[fromRel] ?? []).includes(to)) return null;
  if ((FILE_DENY[from] ?? []).includes(toRel)) return `src/${from}/ must not import src/${toRel}`;
  if ((TARGET_ALLOW[from] ?? []).includes(toRel)) return null;
  const layer = LAYERS[from];
  if (!layer) return null;
  if (layer.allow && !layer.allow.includes(to)) {
    return `src/${from}/ may import only ${layer.allow.map((f) => `src/${f}/`).join(', ')}; not src/${to}/`;
  }
  if (layer.deny && layer.deny.includes(to)) return `src/${from}/ must not import src/${to}/`;
  return null;
}

function normalisePackage(source) {
  const bare = source.startsWith('node:') ? source.slice(5) : source;
  // 'pino/file' → 'pino'; '@scope/x/y' → '@scope/x'
  const parts = bare.split('/');
  if (IMPURE_PACKAGES.has(bare)) return bare;
  return bare.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? bare);
}

const boundariesRule = {
  meta: {
    type: 'problem',
    docs: { description: 'Mailyard module boundaries (docs/architecture.md)' },
    schema: [],
  },
  create(context) {
    const file = context.filename ?? context.getFilename();
    const relFile = relative(SRC, file).split(sep).join('/');
    if (relFile.startsWith('..')) return {}; // not under src/
    const pure = isPure(relFile);

    function check(node, source, typeOnly) {
      if (typeof source !== 'string') return;
      if (source.startsWith('.')) {
        const target = resolve(dirname(file), source).replace(/\.js$/, '.ts');
        const relTarget = relative(SRC, target).split(sep).join('/');
        if (relTarget.startsWith('..')) return;
        const v = layerViolation(relFile, relTarget);
        if (v) {
          context.report({ node, message: `${v} (import of '${source}' in src/${relFile})` });
          return;
        }
        if (pure && !typeOnly) {
          const to = folderOf(relTarget);
          if (to !== 'model' && to !== 'config' && !isPure(relTarget)) {
            context.report({
              node,
              message: `pure module src/${relFile} must not load impure module src/${relTarget} (use 'import type' for types)`,
            });
          }
        }
        return;
      }
      if (pure && !typeOnly && IMPURE_PACKAGES.has(normalisePackage(source))) {
        context.report({ node, message: `pure module src/${relFile} must not load '${source}' (no I/O, no logging in decision code)` });
      }
    }

    return {
      ImportDeclaration(node) {
        const typeOnly =
          node.importKind === 'type' ||
          (node.specifiers.length > 0 && node.specifiers.every((s) => s.importKind === 'type'));
        check(node, node.source.value, typeOnly);
      },
      ExportNamedDeclaration(node) {
        if (node.source) check(node, node.source.value, node.exportKind === 'type');
      },
      ExportAllDeclaration(node) {
        check(node, node.source.value, node.exportKind === 'type');
      },
      ImportExpression(node) {
        if (node.source.type === 'Literal') check(node, node.source.value, false);
      },
    };
  },
};

const mailyard = { meta: { name: 'mailyard' }, rules: { boundaries: boundariesRule } };

// ---------------------------------------------------------------------------------------------
// Clock and environment restrictions (syntax-level, so plain core rules do)

const NO_PROCESS_ENV = [
  { object: 'process', property: 'env', message: 'only src/daemon, src/cli and src/main.ts read process.env; pass settings in' },
  { object: 'process', property: 'exit', message: 'only src/daemon, src/cli and src/main.ts decide the exit code' },
  { object: 'process', property: 'on', message: 'only src/daemon installs signal and process handlers' },
  { object: 'process', property: 'once', message: 'only src/daemon installs signal and process handlers' },
];
const NO_CLOCK = [
  { object: 'Date', property: 'now', message: 'pure modules take the time as a parameter' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'var/**', 'coverage/**'] },
  {
    files: ['**/*.ts', '**/*.mts'],
    languageOptions: {
      parser: tseslint.parser,
      ecmaVersion: 2022,
      sourceType: 'module',
    },
    plugins: { '@typescript-eslint': tseslint.plugin, mailyard },
    linterOptions: { reportUnusedDisableDirectives: 'off' },
    rules: {
      // light correctness rules that tsc does not cover
      'no-debugger': 'error',
      'no-dupe-keys': 'error',
      'no-duplicate-case': 'error',
      'no-self-assign': 'error',
      'no-unsafe-finally': 'error',
      'no-sparse-arrays': 'error',
      'no-cond-assign': ['error', 'except-parens'],
      'no-var': 'error',
      eqeqeq: ['error', 'smart'],
      // tsc reports unused locals and parameters where it matters
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': 'off',
      '@typescript-eslint/no-misused-new': 'error',
      '@typescript-eslint/prefer-namespace-keyword': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'mailyard/boundaries': 'error',
      'no-restricted-properties': ['error', ...NO_PROCESS_ENV],
    },
  },
  {
    files: ['src/daemon/**/*.ts', 'src/cli/**/*.ts', 'src/main.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // the pure modules: no clock reads (time is a parameter), no timers
    files: PURE_GLOBS(),
    ignores: ['src/routing/categorizer.ts'],
    rules: {
      'no-restricted-properties': ['error', ...NO_PROCESS_ENV, ...NO_CLOCK],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'pure modules schedule nothing; return a time instead' },
        { name: 'setInterval', message: 'pure modules schedule nothing; return a time instead' },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'pure modules take the time as a parameter (no new Date() without arguments)',
        },
      ],
    },
  },
);

/** PURE as globs, for the rule blocks that need ESLint's own file matching. */
function PURE_GLOBS() {
  return [
    'src/policy/**/*.ts',
    'src/routing/**/*.ts', // except categorizer.ts (see `ignores` above)
    'src/queue/scheduler.ts',
    'src/queue/state.ts',
    'src/queue/record.ts',
    'src/queue/dsn.ts',
    'src/delivery/classify.ts',
    'src/delivery/header-firewall.ts',
    'src/delivery/local-path.ts',
    'src/delivery/smtp/mx.ts',
    'src/delivery/smtp/tls-policy.ts',
    'src/logging/protocol-csv.ts',
  ];
}
