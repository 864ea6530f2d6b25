/**
 * A small validating schema: each spec turns an unknown value into a typed
 * one or throws a ConfigError naming the field, the value and what was
 * expected. Leaves also parse strings, for flags and environment variables.
 */
import net from 'node:net';

/** The longest message a ConfigError prints: input of any size is echoed only in part. */
export const MAX_ERROR_MESSAGE = 1024;

export class ConfigError extends Error {
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly expected: string,
    readonly source: string,
  ) {
    // Field names and sources can come from the input too (a YAML key, a file path): each is clipped.
    const message = `invalid configuration: ${clip(field, 160)} = ${describeValue(value)} (from ${clip(source, 200)}): expected ${expected}`;
    super(clip(message, MAX_ERROR_MESSAGE));
    this.name = 'ConfigError';
  }
}

/** Text cut to at most max characters, saying how long it was when it had to be cut. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = `… (${text.length} characters)`;
  return text.slice(0, Math.max(0, max - note.length)) + note;
}

export function describeValue(value: unknown): string {
  if (value === undefined) return '(missing)';
  if (typeof value === 'string') return value.length > 120 ? `${JSON.stringify(value.slice(0, 80))}… (${value.length} characters)` : JSON.stringify(value);
  if (value === null || typeof value !== 'object') return `${String(value)} (${value === null ? 'null' : typeof value})`;
  return Array.isArray(value) ? 'a list' : 'a mapping';
}

/** The JSON Schema (draft 7 subset) a spec checks, for the Helm chart's values.schema.json. */
export type JsonSchema = Record<string, unknown>;

export interface Spec<T> {
  readonly expected: string;
  /** What the spec accepts, as JSON Schema; absent where it checks more than JSON Schema can say. */
  readonly json?: JsonSchema;
  /** Validates a value from a structured source (YAML/JSON). Objects may be partial. */
  parse(value: unknown, field: string, source: string): T;
  /** Validates a value given as text (flag, environment variable). */
  parseText?(text: string, field: string, source: string): T;
}

/** The same spec, with a description for its JSON Schema (the chart shows it). */
export function described<T>(spec: Spec<T>, description: string): Spec<T> {
  return { ...spec, json: { ...spec.json, description } };
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
    json: { type: 'integer', minimum: min, maximum: max, ...(unit ? { description: unit } : {}) },
    parse: check,
    parseText: (text, field, source) => (/^-?\d+$/.test(text.trim()) ? check(Number(text), field, source) : check(text, field, source)),
  };
}

export function boolean(): Spec<boolean> {
  const expected = 'true or false';
  return {
    expected,
    json: { type: 'boolean' },
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
  const json = {
    type: 'string',
    ...(options.pattern ? { pattern: jsonPattern(options.pattern) } : { minLength: 1 }),
    ...(options.expected ? { description: options.expected } : {}),
  };
  return { expected, json, parse: check, parseText: check };
}

/** A RegExp as JSON Schema's pattern: the source without JS's escaped slashes (Helm's validator reads RE2). */
function jsonPattern(pattern: RegExp): string {
  return pattern.source.replace(/\\\//g, '/');
}

/** A host name or IP address to listen on. Checked here, not at bind time, so that `validate` sees it. */
export function listenAddress(): Spec<string> {
  const expected = 'an IP address or host name to listen on, such as 0.0.0.0 or ::';
  const hostName = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
  const check = (value: unknown, field: string, source: string): string => {
    if (typeof value !== 'string' || (net.isIP(value) === 0 && !hostName.test(value))) throw new ConfigError(field, value, expected, source);
    return value;
  };
  return { expected, parse: check, parseText: check };
}

/** An http:// or https:// URL with a host, and a port from 1 when one is given. */
export function httpUrl(example: string): Spec<string> {
  const expected = `an http:// or https:// URL with a host, such as ${example}`;
  const check = (value: unknown, field: string, source: string): string => {
    if (typeof value !== 'string') throw new ConfigError(field, value, expected, source);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new ConfigError(field, value, expected, source);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '' || url.port === '0' || /\s/.test(value)) {
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
  return { expected, json: { type: 'string', enum: [...values] }, parse: check, parseText: check };
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
        if (typeof v !== 'string') throw new ConfigError(fieldOf(field, k), v, 'a string', source);
        setOwn(out, k, v);
      }
      return out;
    },
  };
}

export function stringList(item: Spec<string>): Spec<string[]> {
  const expected = `a list of ${item.expected}`;
  return {
    expected,
    ...(item.json ? { json: { type: 'array', items: item.json } } : {}),
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
export type DeepPartial<T> = T extends Array<unknown> ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

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
    get json(): JsonSchema {
      return {
        type: 'object',
        additionalProperties: false,
        properties: Object.fromEntries(Object.entries(shape).map(([key, spec]) => [key, spec.json ?? {}])),
      };
    },
    parse(value, field, source) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new ConfigError(field || '(top level)', value, expected, source);
      }
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(value)) {
        const childField = fieldOf(field, key);
        const spec = Object.hasOwn(shape, key) ? shape[key] : undefined;
        if (!spec) throw new ConfigError(childField, child, `a known key (one of: ${keys.join(', ')})`, source);
        out[key] = spec.parse(child, childField, source);
      }
      return out as DeepPartial<Parsed<S>>;
    },
  };
}

/** The path of a key under a field: dotted for plain names, quoted in brackets for any other (empty, spaces, dots). */
export function fieldOf(parent: string, key: string): string {
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return parent ? `${parent}.${key}` : key;
  return `${parent}[${JSON.stringify(clip(key, 80))}]`;
}

/** Finds the leaf spec at a dotted path (for flags and environment variables). */
export function specAt(root: ObjectSpec<Shape>, dotted: string): Spec<unknown> {
  let spec: Spec<unknown> = root;
  for (const part of dotted.split('.')) {
    const shape = (spec as ObjectSpec<Shape>).shape;
    if (!shape || !Object.hasOwn(shape, part)) throw new Error(`internal: no config field ${dotted}`);
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
  for (const [k, v] of Object.entries(layer)) setOwn(out, k, mergeTwo(Object.hasOwn(base, k) ? base[k] : undefined, v));
  return out;
}

/**
 * Sets a key that came from input as an own property. Plain assignment would
 * treat "__proto__" as the prototype and drop the value.
 */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
