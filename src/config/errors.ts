/**
 * Configuration problems as the administrator sees them: one `ConfigIssue` per problem, anchored at
 * the file, line and column of the YAML node it is about, printed `FILE:LINE:COL: message` (warnings
 * as `FILE:LINE:COL: warning: message`). Lines and columns are 1-based. Pure.
 */

export type IssueSeverity = 'error' | 'warning';

export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
  readonly severity: IssueSeverity;
}

/** "FILE:LINE:COL: message", or "FILE:LINE:COL: warning: message" for warnings. */
export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.severity === 'warning' ? 'warning: ' : ''}${i.message}`;
}

/** Orders issues by position, errors before warnings at the same place; stable otherwise. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, n) => ({ issue, n }))
    .sort((a, b) => a.issue.line - b.issue.line || a.issue.col - b.issue.col || sev(a.issue) - sev(b.issue) || a.n - b.n)
    .map((x) => x.issue);
}

function sev(i: ConfigIssue): number {
  return i.severity === 'error' ? 0 : 1;
}

/** The key path of a problem, as administrators read it: `receiveConnectors[0].bindings[1]`. */
export type KeyPath = readonly (string | number)[];

export function formatPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out || '(top level)';
}

/** Levenshtein distance, case-insensitive (a typo in case counts as one edit at most). */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= t.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (s[i - 1] === t[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[t.length]!;
}

/** The closest candidate to `word` when it is close enough to be a likely typo, else undefined. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(2, Math.floor(Math.max(word.length, best.length) / 3));
  return bestD <= limit ? best : undefined;
}
