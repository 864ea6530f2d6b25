/**
 * A small validating schema: each spec turns an unknown value into a typed
 * one or throws a ConfigError naming the field, the value and what was
 * expected. Leaves also parse strings, for flags and environment variables.
 */

export class ConfigError extends Error {
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly expected: string,
    readonly source: string,
  ) {
    super(`invalid configuration: ${field} = ${describeValue(value)} (from ${source}): expected ${expected}`);
    this.name = 'ConfigError';
  }
}

export function describeValue(value: unknown): string {
  if (value === undefined) return '(missing)';
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return `${String(value)} (${value === null ? 'null' : typeof value})`;
  return Array.isArray(value) ? 'a list' : 'a mapping';
}

export interface Spec<T> {
  readonly expected: string;
  /** Validates a value from a structured source (YAML/JSON). Objects may be partial. */
  parse(value: unknown, field: string, source: string): T;
  /** Validates a value given as text (flag, environment variable). */
  parseText?(text: string, field: string, source: string): T;
}

export function integer(min: number, max: number, unit = ''): Spec<number> {
  const expected = `an integer from ${min} to ${max}${unit ? ` (${unit})` : ''}`;
  const check = (value: unknown, field: string, source: string): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(field, value, expected, source);
    }
    return value;
  };
  return {
    expected,
    parse: check,
    parseText: (text, field, source) =>
      /^-?\d+$/.test(text.trim()) ? check(Number(text), field, source) : check(text, field, source),
  };
}

export function boolean(): Spec<boolean> {
  const expected = 'true or false';
  return {
    expected,
    parse(value, field, source) {
      if (typeof value !== 'boolean') throw new ConfigError(field, value, expected, source);
      return value;
    },
    parseText(text, field, source) {
      if (text === 'true') return true;
      if (text === 'false') return false;
      throw new ConfigError(field, text, expected, source);
    },
  };
}

export function string(options: { pattern?: RegExp; expected?: string } = {}): Spec<string> {
  const expected = options.expected ?? 'a non-empty string';
  const check = (value: unknown, field: string, source: string): string => {
    if (typeof value !== 'string' || value.length === 0 || (options.pattern && !options.pattern.test(value))) {
      throw new ConfigError(field, value, expected, source);
    }
    return value;
  };
  return { expected, parse: check, parseText: check };
}

export function oneOf<const T extends string>(values: readonly T[]): Spec<T> {
  const expected = `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
  const check = (value: unknown, field: string, source: string): T => {
    if (typeof value !== 'string' || !values.includes(value as T)) throw new ConfigError(field, value, expected, source);
    return value as T;
  };
  return { expected, parse: check, parseText: check };
}

export function stringMap(): Spec<Record<string, string>> {
  const expected = 'a mapping of strings to strings';
  return {
    expected,
    parse(value, field, source) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new ConfigError(field, value, expected, source);
      }
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new ConfigError(`${field}.${k}`, v, 'a string', source);
        out[k] = v;
      }
      return out;
    },
  };
}

export function stringList(item: Spec<string>): Spec<string[]> {
  const expected = `a list of ${item.expected}`;
  return {
    expected,
    parse(value, field, source) {
      if (!Array.isArray(value)) throw new ConfigError(field, value, expected, source);
      return value.map((v, i) => item.parse(v, `${field}[${i}]`, source));
    },
    parseText(text, field, source) {
      return text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
        .map((v, i) => item.parse(v, `${field}[${i}]`, source));
    },
  };
}

type Shape = Record<string, Spec<unknown>>;
export type Parsed<S extends Shape> = { [K in keyof S]: S[K] extends Spec<infer T> ? T : never };
export type DeepPartial<T> = T extends Array<unknown>
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

export interface ObjectSpec<S extends Shape> extends Spec<DeepPartial<Parsed<S>>> {
  readonly shape: S;
}

/** A mapping with known keys; unknown keys are errors, absent keys stay absent (defaults come later). */
export function object<S extends Shape>(shape: S): ObjectSpec<S> {
  const keys = Object.keys(shape);
  const expected = `a mapping with keys ${keys.join(', ')}`;
  return {
    shape,
    expected,
    parse(value, field, source) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new ConfigError(field || '(top level)', value, expected, source);
      }
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(value)) {
        const childField = field ? `${field}.${key}` : key;
        const spec = shape[key];
        if (!spec) throw new ConfigError(childField, child, `a known key (one of: ${keys.join(', ')})`, source);
        out[key] = spec.parse(child, childField, source);
      }
      return out as DeepPartial<Parsed<S>>;
    },
  };
}

/** Finds the leaf spec at a dotted path (for flags and environment variables). */
export function specAt(root: ObjectSpec<Shape>, dotted: string): Spec<unknown> {
  let spec: Spec<unknown> = root;
  for (const part of dotted.split('.')) {
    const shape = (spec as ObjectSpec<Shape>).shape;
    if (!shape || !shape[part]) throw new Error(`internal: no config field ${dotted}`);
    spec = shape[part];
  }
  return spec;
}

/** Sets a dotted path in a plain object, creating parents. */
export function setAt(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

/** Deep merge of plain objects; later layers win, arrays and leaves replace. */
export function deepMerge<T>(base: T, ...layers: Array<DeepPartial<T> | undefined>): T {
  let out: unknown = base;
  for (const layer of layers) out = mergeTwo(out, layer);
  return out as T;
}

function mergeTwo(base: unknown, layer: unknown): unknown {
  if (layer === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(layer)) return layer;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(layer)) out[k] = mergeTwo(base[k], v);
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
