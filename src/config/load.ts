/**
 * From YAML text to the effective, frozen `Config`, or to the full list of problems.
 *
 * Steps: YAML parse (syntax errors and duplicate keys, with positions) -> schema (schema.ts; every
 * zod issue mapped back to the YAML node it is about: an unknown key points at the key itself with
 * a "did you mean" suggestion, a missing key at the map that lacks it) -> semantic checks
 * (validate.ts) -> defaults (defaults.ts). Every problem found is reported, sorted by position;
 * nothing here throws for bad input. `parseConfigText` is pure; `loadConfigFile` only adds the read.
 */
import { readFile } from 'node:fs/promises';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { applyDefaults, type Config } from './defaults.js';
import { formatPath, sortIssues, suggest, type ConfigIssue, type IssueSeverity, type KeyPath } from './errors.js';
import { configSchema, type ParsedConfig } from './schema.js';
import { kindOf, objectKeys, schemaAt } from './schema-walk.js';
import { parsedDefaultReceiveConnectors, validateSemantics } from './validate.js';

export type LoadResult =
  | { readonly ok: true; readonly config: Config; readonly warnings: readonly ConfigIssue[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

interface Located {
  readonly path: KeyPath;
  readonly message: string;
  readonly severity: IssueSeverity;
  /** Point at the key of the last path segment instead of its value (unknown keys). */
  readonly atKey?: boolean;
}

/** Parses and checks configuration text; `file` names it in every issue. */
export function parseConfigText(text: string, file: string): LoadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, strict: true });
  const pos = (offset: number) => {
    const lp = lineCounter.linePos(offset);
    return { line: lp.line, col: lp.col };
  };
  const issues: ConfigIssue[] = [];
  const add = (offset: number, message: string, severity: IssueSeverity) => issues.push({ file, ...pos(offset), message, severity });

  for (const e of doc.errors) add(e.pos[0], `YAML syntax error: ${firstLine(e.message)}`, 'error');
  for (const w of doc.warnings) add(w.pos[0], `YAML: ${firstLine(w.message)}`, 'warning');
  if (doc.errors.length > 0) return { ok: false, issues: sortIssues(issues) };

  const keyProblems = duplicateKeys(doc, lineCounter);
  for (const d of keyProblems) add(d.offset, d.message, 'error');
  if (keyProblems.some((d) => d.fatal)) return { ok: false, issues: sortIssues(issues) };

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    add(0, `YAML: ${firstLine(err instanceof Error ? err.message : String(err))}`, 'error');
    return { ok: false, issues: sortIssues(issues) };
  }
  if (value === null || value === undefined) value = {};

  const place = (l: Located) => issues.push({ file, ...pos(locate(doc, l.path, l.atKey ?? false)), message: l.message, severity: l.severity });

  const parsed = configSchema.safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) for (const l of explainIssue(issue as ZodIssue, value, [])) place(l);
    return { ok: false, issues: sortIssues(issues) };
  }

  try {
    for (const s of validateSemantics(parsed.data)) place(s);
  } catch (err) {
    add(0, `cannot check the configuration: ${err instanceof Error ? err.message : String(err)}`, 'error');
  }
  if (issues.some((i) => i.severity === 'error')) return { ok: false, issues: sortIssues(issues) };

  let config: Config;
  try {
    config = buildConfig(parsed.data, file);
  } catch (err) {
    add(0, `cannot apply defaults: ${err instanceof Error ? err.message : String(err)}`, 'error');
    return { ok: false, issues: sortIssues(issues) };
  }
  return { ok: true, config, warnings: sortIssues(issues) };
}

/** Reads and checks a configuration file; an unreadable file is one issue naming it. */
export async function loadConfigFile(path: string): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : err instanceof Error ? err.message : String(err);
    return { ok: false, issues: [{ file: path, line: 1, col: 1, message: `cannot read the configuration file: ${why}`, severity: 'error' }] };
  }
  return parseConfigText(text, path);
}

/** Schema output -> effective config: default Receive connectors, presets, then frozen. */
export function buildConfig(parsed: ParsedConfig, source: string): Config {
  const defaults = parsed.receiveConnectors === undefined ? parsedDefaultReceiveConnectors(parsed) : undefined;
  return deepFreeze(applyDefaults(parsed, source, defaults));
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

// ---- positions ---------------------------------------------------------------------------

function keyText(k: unknown): string {
  return isScalar(k) ? String(k.value) : String(k);
}

function start(node: unknown): number | undefined {
  return (node as YamlNode | null | undefined)?.range?.[0];
}

/**
 * Offset of the node at `path`: the value (or the key with `atKey`); when the path goes further
 * than the document (a missing key, a default), the deepest node that exists.
 */
export function locate(doc: Document, path: KeyPath, atKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = start(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(seg));
      if (!pair) return offset;
      const last = i === path.length - 1;
      const keyOff = start(pair.key) ?? offset;
      if (last && atKey) return keyOff;
      node = pair.value;
      offset = start(node) ?? keyOff;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) return offset;
      node = item;
      offset = start(node) ?? offset;
    } else return offset;
  }
  return offset;
}

/** Duplicate keys, and keys that are lists or maps (fatal: they cannot become object keys). */
function duplicateKeys(doc: Document, lc: LineCounter): { offset: number; message: string; fatal: boolean }[] {
  const out: { offset: number; message: string; fatal: boolean }[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, number>();
      for (const pair of map.items) {
        const off = start(pair.key) ?? start(map) ?? 0;
        if (pair.key !== null && !isScalar(pair.key) && !isAlias(pair.key)) {
          out.push({ offset: off, message: 'a key must be a plain name, not a list or a mapping', fatal: true });
          continue;
        }
        const k = keyText(pair.key);
        const first = seen.get(k);
        if (first !== undefined) out.push({ offset: off, message: `duplicate key ${JSON.stringify(k)} (first given at line ${lc.linePos(first).line})`, fatal: false });
        else seen.set(k, off);
      }
    },
  });
  return out;
}

// ---- zod issues in words -----------------------------------------------------------------

interface ZodIssue {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly expected?: string;
  readonly keys?: readonly string[];
  readonly values?: readonly unknown[];
  readonly errors?: readonly (readonly ZodIssue[])[];
  readonly origin?: string;
  readonly minimum?: number | bigint;
  readonly maximum?: number | bigint;
  readonly exact?: boolean;
  readonly inclusive?: boolean;
}

function getIn(value: unknown, path: KeyPath): unknown {
  let v = value;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'boolean') return `${v}`;
  return `the number ${String(v)}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
};

function kindAt(path: KeyPath): string | undefined {
  const schema = schemaAt(configSchema as unknown as z.ZodType, path);
  return schema ? kindOf(schema) : undefined;
}

function toPath(p: readonly PropertyKey[]): (string | number)[] {
  return p.map((s) => (typeof s === 'number' ? s : String(s)));
}

function explainIssue(issue: ZodIssue, root: unknown, prefix: KeyPath): Located[] {
  const path: KeyPath = [...prefix, ...toPath(issue.path)];
  const actual = getIn(root, path);
  const where = formatPath(path);
  const err = (message: string, p: KeyPath = path, atKey = false): Located => ({ path: p, message, severity: 'error', atKey });
  switch (issue.code) {
    case 'unrecognized_keys': {
      const schema = schemaAt(configSchema as unknown as z.ZodType, path);
      const known = schema ? (objectKeys(schema) ?? []) : [];
      return (issue.keys ?? []).map((k) => {
        const s = suggest(k, known);
        return err(`${where}: unknown key ${JSON.stringify(k)}${s ? `; did you mean ${JSON.stringify(s)}?` : ''}`, [...path, k], true);
      });
    }
    case 'invalid_type': {
      const parentPath = path.slice(0, -1);
      const parent = getIn(root, parentPath);
      const last = path[path.length - 1];
      if (actual === undefined && typeof last === 'string' && parent !== null && typeof parent === 'object' && !Array.isArray(parent) && !(last in parent)) {
        return [err(`${formatPath(parentPath)}: missing required key ${JSON.stringify(last)}`, parentPath)];
      }
      return [err(`${where}: expected ${EXPECTED[issue.expected ?? ''] ?? issue.expected}, got ${describeValue(actual)}`)];
    }
    case 'invalid_value': {
      const values = (issue.values ?? []).map((v) => String(v));
      const s = typeof actual === 'string' ? suggest(actual, values) : undefined;
      return [err(`${where}: ${describeValue(actual)} is not one of ${values.join(', ')}${s ? `; did you mean ${JSON.stringify(s)}?` : ''}`)];
    }
    case 'invalid_union': {
      const branches = issue.errors ?? [];
      const kind = kindAt(path);
      if (kind === 'size') return [err(`${where}: expected a size (bytes, "36MB", "512KB" or "unlimited"), got ${describeValue(actual)}`)];
      if (kind === 'duration') return [err(`${where}: expected a duration ("30s", "5m", "4h", "2d" or "d.hh:mm:ss"), got ${describeValue(actual)}`)];
      const near = branches.find((b) => b.some((i) => !(i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value'))));
      if (near) return near.flatMap((i) => explainIssue(i, root, path));
      const wants = branches.flatMap((b) =>
        b.map((i) => (i.code === 'invalid_value' ? (i.values ?? []).map((v) => JSON.stringify(v)).join(' or ') : (EXPECTED[i.expected ?? ''] ?? String(i.expected)))),
      );
      return [err(`${where}: expected ${[...new Set(wants)].join(' or ')}, got ${describeValue(actual)}`)];
    }
    case 'too_small':
    case 'too_big': {
      const n = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      const bound = issue.exact ? 'exactly' : issue.code === 'too_small' ? 'at least' : 'at most';
      if (issue.origin === 'array') return [err(`${where}: needs ${bound} ${n} item${n === 1 ? '' : 's'}`)];
      if (issue.origin === 'string') {
        return [err(issue.code === 'too_small' && n === 1 ? `${where}: must not be empty` : `${where}: must be ${bound} ${n} characters long`)];
      }
      return [err(`${where}: must be ${bound} ${n}${issue.inclusive === false ? ' (exclusive)' : ''}, got ${describeValue(actual)}`)];
    }
    default:
      return [err(`${where}: ${issue.message}`)];
  }
}
