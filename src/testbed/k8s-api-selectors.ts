/**
 * Label and field selectors as the API server parses them: label selectors
 * with equality (=, ==, !=) and set-based (in, notin, exists, !exists)
 * requirements; field selectors with =, ==, != on the fields a resource
 * supports. A selector the server would reject is a SelectorError (HTTP 400).
 */
import type { KubeObject, ResourceType } from './k8s-api-objects';

export class SelectorError extends Error {}

export type Matcher = (obj: KubeObject) => boolean;

type LabelOp = 'in' | 'notin' | 'exists' | '!exists';
interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

const KEY = '[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?';
const VALUE = '(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?';
const EQUALITY = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^()]*)\\)$`);
const EXISTS = new RegExp(`^(!?)\\s*(${KEY})$`);
const VALUE_ONLY = new RegExp(`^${VALUE}$`);

/** Splits on commas that are not inside the parentheses of an in/notin list. */
function terms(selector: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  out.push(selector.slice(start));
  return out.map((t) => t.trim());
}

function parseLabelRequirement(term: string): LabelRequirement {
  let m = EQUALITY.exec(term);
  if (m) return { key: m[1], op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]] };
  m = SET.exec(term);
  if (m) {
    const values = m[3].split(',').map((v) => v.trim());
    if (values.some((v) => !VALUE_ONLY.test(v))) throw new SelectorError(`invalid label value in "${term}"`);
    return { key: m[1], op: m[2] as LabelOp, values };
  }
  m = EXISTS.exec(term);
  if (m) return { key: m[2], op: m[1] ? '!exists' : 'exists', values: [] };
  throw new SelectorError(`unable to parse requirement: "${term}"`);
}

function labelMatches(r: LabelRequirement, labels: Record<string, string> | undefined): boolean {
  const has = labels !== undefined && Object.prototype.hasOwnProperty.call(labels, r.key);
  switch (r.op) {
    case 'exists':
      return has;
    case '!exists':
      return !has;
    case 'in':
      return has && r.values.includes(labels[r.key]);
    case 'notin':
      // As in the real server: != and notin also match objects without the label.
      return !has || !r.values.includes(labels[r.key]);
  }
}

export function parseLabelSelector(selector: string | null | undefined): Matcher | undefined {
  if (!selector || !selector.trim()) return undefined;
  const requirements = terms(selector).map(parseLabelRequirement);
  return (obj) => requirements.every((r) => labelMatches(r, obj.metadata.labels));
}

/** The value of a dotted field path as the field selector sees it: scalars as strings, missing as ''. */
function fieldValue(obj: KubeObject, path: string): string {
  let v: unknown = obj;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return '';
    v = (v as Record<string, unknown>)[part];
  }
  return v === undefined || v === null ? '' : String(v);
}

export function parseFieldSelector(selector: string | null | undefined, type: ResourceType): Matcher | undefined {
  if (!selector || !selector.trim()) return undefined;
  const requirements = terms(selector).map((term) => {
    const m = /^([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new SelectorError(`invalid field selector: "${term}"`);
    const [, field, op, value] = m;
    if (!type.fieldLabels.includes(field)) {
      throw new SelectorError(`field label not supported: ${field}`);
    }
    return { field, negate: op === '!=', value };
  });
  return (obj) => requirements.every((r) => (fieldValue(obj, r.field) === r.value) !== r.negate);
}

/** Every matcher must match; none means everything matches. */
export function allOf(...matchers: Array<Matcher | undefined>): Matcher | undefined {
  const present = matchers.filter((m): m is Matcher => m !== undefined);
  if (present.length === 0) return undefined;
  if (present.length === 1) return present[0];
  return (obj) => present.every((m) => m(obj));
}
