// Publication filtering by tags (Centrifugo's, namespaces with `allow_tags_filter`): a subscribe may
// carry a filter (`tf`, centrifuge-js `tagsFilter`), a tree of comparisons of the publications'
// tags, and that subscription is then sent only the publications it matches. The grammar and what
// each comparison means are Centrifugo's: leaves `{key, cmp, val | vals}` with `eq`, `neq`, `in`,
// `nin`, `ex`, `nex`, `sw`, `ew`, `ct`, and `gt`, `gte`, `lt`, `lte` comparing decimal numbers (a
// value that is not one never matches); nodes `{op: "and" | "or", nodes}` and `{op: "not", nodes: [one]}`.

/** A validated filter (`num`: a numeric comparison's `val`, read once; undefined when it is no decimal). */
export type TagsFilter =
  | { readonly op: 'and' | 'or' | 'not'; readonly nodes: readonly TagsFilter[] }
  | { readonly op: ''; readonly key: string; readonly cmp: string; readonly val: string; readonly vals: readonly string[]; readonly num?: Decimal };

const VALUE_CMPS = new Set(['eq', 'neq', 'sw', 'ew', 'ct', 'gt', 'gte', 'lt', 'lte']);
const LIST_CMPS = new Set(['in', 'nin']);
const PRESENCE_CMPS = new Set(['ex', 'nex']);
/** Deepest nesting accepted, Herald's own bound (a filter is a client's; its size costs each publication). */
const MAX_DEPTH = 16;
/** Most nodes and values in one filter, for the same reason (Herald's own bound). */
const MAX_SIZE = 1024;

/** Reads a client's filter; throws an Error saying what is wrong with it. */
export function parseTagsFilter(value: unknown): TagsFilter {
  const budget = { left: MAX_SIZE };
  return parseNode(value, 0, budget);
}

function parseNode(value: unknown, depth: number, budget: { left: number }): TagsFilter {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('a filter node must be an object');
  if (depth >= MAX_DEPTH) throw new Error(`a filter may nest ${MAX_DEPTH} levels at most`);
  if (--budget.left < 0) throw new Error(`a filter may have ${MAX_SIZE} nodes and values at most`);
  const node = value as Record<string, unknown>;
  const op = node.op ?? '';
  const text = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'string' ? v : fail('values must be strings'));
  if (op === '') {
    const cmp = text(node.cmp);
    const key = text(node.key);
    const val = text(node.val);
    const raw = node.vals ?? [];
    if (!Array.isArray(raw)) throw new Error('vals must be a list of strings');
    budget.left -= raw.length;
    if (budget.left < 0) throw new Error(`a filter may have ${MAX_SIZE} nodes and values at most`);
    const vals = raw.map(text);
    if (VALUE_CMPS.has(cmp)) {
      if (val === '') throw new Error(`${cmp} needs val`);
      if (vals.length) throw new Error(`${cmp} takes no vals`);
    } else if (LIST_CMPS.has(cmp)) {
      if (!vals.length) throw new Error(`${cmp} needs vals`);
      if (val !== '') throw new Error(`${cmp} takes no val`);
    } else if (PRESENCE_CMPS.has(cmp)) {
      if (val !== '' || vals.length) throw new Error(`${cmp} takes neither val nor vals`);
    } else {
      throw new Error(cmp === '' ? 'a leaf needs cmp' : `unknown comparison ${cmp}`);
    }
    if (key === '' && !PRESENCE_CMPS.has(cmp)) throw new Error('a leaf needs key');
    const numeric = cmp === 'gt' || cmp === 'gte' || cmp === 'lt' || cmp === 'lte';
    return numeric ? { op: '', key, cmp, val, vals, num: decimal(val) } : { op: '', key, cmp, val, vals };
  }
  if (op !== 'and' && op !== 'or' && op !== 'not') throw new Error(`unknown op ${String(op)}`);
  const nodes = node.nodes ?? [];
  if (!Array.isArray(nodes)) throw new Error('nodes must be a list');
  if (op === 'not' ? nodes.length !== 1 : nodes.length === 0) throw new Error(op === 'not' ? 'not takes exactly one node' : `${op} needs nodes`);
  return { op, nodes: nodes.map((n) => parseNode(n, depth + 1, budget)) };
}

function fail(message: string): never {
  throw new Error(message);
}

/** True when a publication with these tags passes the filter. */
export function matchesTags(filter: TagsFilter, tags: Readonly<Record<string, string>> | undefined): boolean {
  switch (filter.op) {
    case 'and':
      return filter.nodes.every((n) => matchesTags(n, tags));
    case 'or':
      return filter.nodes.some((n) => matchesTags(n, tags));
    case 'not':
      return !matchesTags(filter.nodes[0]!, tags);
    default: {
      const has = tags !== undefined && Object.hasOwn(tags, filter.key);
      const value = has ? tags[filter.key]! : '';
      switch (filter.cmp) {
        case 'eq':
          return has && value === filter.val;
        case 'neq':
          return !has || value !== filter.val;
        case 'in':
          return filter.vals.includes(value);
        case 'nin':
          return !filter.vals.includes(value);
        case 'ex':
          return has;
        case 'nex':
          return !has;
        case 'sw':
          return has && value.startsWith(filter.val);
        case 'ew':
          return has && value.endsWith(filter.val);
        case 'ct':
          return has && value.includes(filter.val);
        default: {
          if (!has || filter.num === undefined) return false;
          const tag = decimal(value);
          if (tag === undefined) return false;
          const order = compare(tag, filter.num);
          return filter.cmp === 'gt' ? order > 0 : filter.cmp === 'gte' ? order >= 0 : filter.cmp === 'lt' ? order < 0 : order <= 0;
        }
      }
    }
  }
}

const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;

/** A decimal number written as text, in parts that compare exactly. */
interface Decimal {
  readonly neg: boolean;
  readonly int: string;
  readonly frac: string;
}

/** Reads a decimal number (`-12.50`); undefined when the text is not one. */
function decimal(text: string): Decimal | undefined {
  const m = DECIMAL.exec(text);
  if (!m) return undefined;
  const int = m[2]!.replace(/^0+(?=\d)/, '');
  const frac = (m[3] ?? '').replace(/0+$/, '');
  return { neg: m[1] === '-' && !(int === '0' && frac === ''), int, frac };
}

/** Compares two decimal numbers written as text, exactly (no rounding); undefined when either is not one. */
export function compareDecimals(a: string, b: string): number | undefined {
  const p = decimal(a);
  const q = decimal(b);
  return p && q ? compare(p, q) : undefined;
}

function compare(p: Decimal, q: Decimal): number {
  if (p.neg !== q.neg) return p.neg ? -1 : 1;
  const sign = p.neg ? -1 : 1;
  if (p.int.length !== q.int.length) return sign * (p.int.length - q.int.length);
  if (p.int !== q.int) return sign * (p.int < q.int ? -1 : 1);
  const len = Math.max(p.frac.length, q.frac.length);
  const pf = p.frac.padEnd(len, '0');
  const qf = q.frac.padEnd(len, '0');
  return pf === qf ? 0 : sign * (pf < qf ? -1 : 1);
}
