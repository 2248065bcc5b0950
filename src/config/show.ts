/**
 * `mailyard config show`: the effective configuration as YAML, every default filled in, keys in
 * schema order, sizes as "36MB"/"unlimited" and durations as "5m"/"2d", so that the output can be
 * read like `Get-ReceiveConnector | Format-List` and fed back to `config check` unchanged: parsing
 * the output gives the same Config (a unit test holds this). Pure.
 */
import { Document, isScalar, visit } from 'yaml';

import { formatDuration, formatSize, UNLIMITED } from '../model/index.js';
import type { Config } from './defaults.js';
import { configSchema } from './schema.js';
import { childSchema, kindOf, objectShape, type AnySchema } from './schema-walk.js';

/** Renders the effective config; `header` lines become a leading comment. */
export function showConfig(config: Config, header: readonly string[] = [`effective configuration of ${config.source}, every default filled in`]): string {
  const doc = new Document(render(config, configSchema as unknown as AnySchema));
  // Lists of plain values (bindings, ranges, auth mechanisms) read best on one line.
  visit(doc, {
    Seq(_, seq) {
      if (seq.items.length > 0 && seq.items.every((i) => isScalar(i))) seq.flow = true;
    },
  });
  if (header.length > 0) doc.commentBefore = header.map((h) => ` ${h}`).join('\n');
  return doc.toString({ lineWidth: 0, indentSeq: true });
}

/** The effective config as the plain object that showConfig prints (schema order, units formatted). */
export function toShowable(config: Config): unknown {
  return render(config, configSchema as unknown as AnySchema);
}

function render(value: unknown, schema: AnySchema | undefined): unknown {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && value === UNLIMITED) return 'unlimited';
  if (!schema) return plain(value);
  switch (kindOf(schema)) {
    case 'size': {
      if (typeof value !== 'number') return value;
      const s = formatSize(value);
      return /^\d+$/.test(s) ? value : s;
    }
    case 'duration':
      return typeof value === 'number' ? formatDuration(value) : value;
    case 'count':
      return value;
    case 'array':
      return Array.isArray(value) ? value.map((v) => render(v, childSchema(schema, 0))) : value;
    case 'object':
    case 'union': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
      // A parsed address space renders as its canonical text, "SMTP:*.contoso.com;1".
      const text = (value as { text?: unknown }).text;
      if (kindOf(schema) === 'union' && typeof text === 'string') return text;
      const shape = objectShape(schema) ?? {};
      const out: Record<string, unknown> = {};
      for (const [k, sub] of Object.entries(shape)) {
        const v = render((value as Record<string, unknown>)[k], sub);
        if (v !== undefined) out[k] = v;
      }
      return out;
    }
    default:
      return plain(value);
  }
}

function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  if (value === UNLIMITED) return 'unlimited';
  return value;
}

