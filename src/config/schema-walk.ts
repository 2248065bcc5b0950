/**
 * Reading the zod schema as data: which keys an object has (for "did you mean" and for the
 * documentation test), the schema at a key path, a key's default and description, and whether a
 * key holds a size, a duration or a count that may be unlimited (for `config show`). Pure; relies
 * only on zod 4's `_zod.def` shapes of the wrappers this project uses.
 */
import type { z } from 'zod';
import { durationTransform, sizeTransform } from './schema.js';

// zod's internal definition objects are untyped from the outside; keep the `any` in one place.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Def = any;
export type AnySchema = z.ZodType;

function def(s: AnySchema): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

export interface Unwrapped {
  /** The schema under optional/default/prefault/nullable/readonly wrappers. */
  readonly inner: AnySchema;
  readonly optional: boolean;
  /** The default as written in the schema (input form for prefaults, e.g. "36MB"), when there is one. */
  readonly hasDefault: boolean;
  readonly defaultValue: unknown;
  readonly description: string | undefined;
}

export function unwrap(schema: AnySchema): Unwrapped {
  let s = schema;
  let optional = false;
  let hasDefault = false;
  let defaultValue: unknown;
  let description: string | undefined = s.description;
  for (;;) {
    const d = def(s);
    if (d.type === 'optional' || d.type === 'nullable' || d.type === 'readonly') {
      if (d.type === 'optional') optional = true;
      s = d.innerType;
    } else if (d.type === 'default' || d.type === 'prefault') {
      if (!hasDefault) {
        hasDefault = true;
        defaultValue = typeof d.defaultValue === 'function' ? d.defaultValue() : d.defaultValue;
      }
      s = d.innerType;
    } else break;
    description ??= s.description;
  }
  return { inner: s, optional, hasDefault, defaultValue, description };
}

export type SchemaKind = 'object' | 'array' | 'record' | 'union' | 'size' | 'duration' | 'count' | 'scalar';

/** What a schema holds, seen through its wrappers. */
export function kindOf(schema: AnySchema): SchemaKind {
  const s = unwrap(schema).inner;
  const d = def(s);
  switch (d.type) {
    case 'object':
      return 'object';
    case 'array':
      return 'array';
    case 'record':
      return 'record';
    case 'pipe': {
      const out = def(d.out);
      if (out.type === 'transform') {
        if (out.transform === sizeTransform) return 'size';
        if (out.transform === durationTransform) return 'duration';
        return 'count';
      }
      return kindOf(d.in);
    }
    case 'union':
      return (d.options as AnySchema[]).some((o) => kindOf(o) === 'object') ? 'union' : 'scalar';
    default:
      return 'scalar';
  }
}

/** The shape of an object schema (first object branch of a union), in schema order. */
export function objectShape(schema: AnySchema): Record<string, AnySchema> | undefined {
  const s = unwrap(schema).inner;
  const d = def(s);
  if (d.type === 'object') return d.shape as Record<string, AnySchema>;
  if (d.type === 'union') {
    for (const o of d.options as AnySchema[]) {
      const shape = objectShape(o);
      if (shape) return shape;
    }
  }
  if (d.type === 'pipe') return objectShape(d.in);
  return undefined;
}

export function objectKeys(schema: AnySchema): string[] | undefined {
  const shape = objectShape(schema);
  return shape ? Object.keys(shape) : undefined;
}

/** The schema one step down: an object's key, an array's element, a record's value. */
export function childSchema(schema: AnySchema, seg: string | number): AnySchema | undefined {
  const s = unwrap(schema).inner;
  const d = def(s);
  if (d.type === 'array') return d.element as AnySchema;
  if (d.type === 'record') return d.valueType as AnySchema;
  if (d.type === 'pipe') return childSchema(d.in, seg);
  const shape = objectShape(s);
  return shape && typeof seg === 'string' ? shape[seg] : undefined;
}

export function schemaAt(root: AnySchema, path: readonly (string | number)[]): AnySchema | undefined {
  let s: AnySchema | undefined = root;
  for (const seg of path) {
    if (!s) return undefined;
    s = childSchema(s, seg);
  }
  return s;
}

/**
 * Every key path of the schema, depth first in schema order; list elements appear as "[]":
 * ["receiveConnectors", "[]", "bindings"]. Records (free-form maps) are not descended into.
 */
export function keyPaths(root: AnySchema): string[][] {
  const out: string[][] = [];
  const walk = (s: AnySchema, prefix: string[]) => {
    const shape = objectShape(s);
    if (shape) {
      for (const [k, v] of Object.entries(shape)) {
        out.push([...prefix, k]);
        walk(v, [...prefix, k]);
      }
      return;
    }
    const inner = unwrap(s).inner;
    if (def(inner).type === 'array') walk(def(inner).element, [...prefix, '[]']);
  };
  walk(root, []);
  return out;
}
