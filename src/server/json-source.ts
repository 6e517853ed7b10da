// Payloads kept as received. Herald passes a command's `data` and `info` on without reading them, so
// they must reach subscribers and history as the publisher wrote them, as Centrifugo keeps them
// (raw JSON): re-serialising a parsed value would round 64-bit integers and long decimals to
// doubles, and drop repeated keys. JSON.parse in Node 20 gives a reviver no source text, so the
// source is found by scanning the text JSON.parse has just accepted, down to a few levels (where API
// and client commands hold their payloads), each level in one linear pass.

/** The members whose source text is kept: `data` and `info` of commands, `meta` of tokens and proxy results, `ci` and `hi` of the Redis envelope's client info. */
export type PayloadKey = 'data' | 'info' | 'meta' | 'ci' | 'hi';

/** The payload members of commands (client and API). */
const COMMAND_KEYS: readonly PayloadKey[] = ['data', 'info'];

/** The payload members of a token's claims and of a proxy's answer (a connection's `meta` too). */
export const CLAIM_KEYS: readonly PayloadKey[] = ['data', 'info', 'meta'];

interface Source {
  readonly value: unknown;
  readonly text: string;
}

/**
 * Where a parsed object keeps the source text of its payload members: a symbol property, not
 * enumerable, so that serialising, comparing or copying the object does not see it (a WeakMap would
 * cost several times the parse itself, on the API's most frequent path).
 */
const SOURCES = Symbol('payload sources');

type WithSources = { [SOURCES]?: Partial<Record<PayloadKey, Source>> };

/** How deep objects are searched for payloads: an API batch in the legacy form is top, params, commands, item, publish. */
const MAX_DEPTH = 5;

const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * Parses JSON text as JSON.parse does (throwing its SyntaxError), and remembers where the members
 * named in `keys` came from.
 */
export function parseKeepingPayloads(text: string, keys: readonly PayloadKey[] = COMMAND_KEYS): unknown {
  const value: unknown = JSON.parse(text);
  // A payload key is written plainly, or with an escape.
  if (typeof value === 'object' && value !== null && (mentionsAny(text, keys) || text.includes('\\'))) {
    walk(text, skipSpace(text, 0), value, 0, keys);
  }
  return value;
}

/** Each payload key as it is written in JSON text, made once. */
const QUOTED: Readonly<Record<PayloadKey, string>> = { data: '"data"', info: '"info"', meta: '"meta"', ci: '"ci"', hi: '"hi"' };

function mentionsAny(text: string, keys: readonly PayloadKey[]): boolean {
  for (const key of keys) if (text.includes(QUOTED[key])) return true;
  return false;
}

/** The text `obj[key]` was parsed from, if `obj` came from parseKeepingPayloads and the member is unchanged. */
export function sourceOf(obj: object, key: PayloadKey): string | undefined {
  const source = (obj as WithSources)[SOURCES]?.[key];
  const value = (obj as Record<string, unknown>)[key];
  return source !== undefined && value !== undefined && Object.is(source.value, value) ? source.text : undefined;
}

/** `obj[key]` as JSON text: as received when it was parsed, else serialised; undefined when absent. */
export function payloadText(obj: Record<string, unknown>, key: PayloadKey): string | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  return sourceOf(obj, key) ?? JSON.stringify(value);
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** The index just past the string whose opening quote is at `i`. */
function stringEnd(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    let backslashes = 0;
    while (text.charCodeAt(q - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** The index just past the value starting at `i`. */
function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return stringEnd(text, i);
  if (c !== OPEN_OBJECT && c !== OPEN_ARRAY) {
    // A number, true, false or null: up to the next delimiter.
    let j = i + 1;
    while (j < text.length) {
      const d = text.charCodeAt(j);
      if (d === 0x2c || d === CLOSE_OBJECT || d === CLOSE_ARRAY || isSpace(d)) break;
      j++;
    }
    return j;
  }
  let depth = 0;
  let j = i;
  while (j < text.length) {
    const d = text.charCodeAt(j);
    if (d === QUOTE) {
      j = stringEnd(text, j);
      continue;
    }
    if (d === OPEN_OBJECT || d === OPEN_ARRAY) depth++;
    else if (d === CLOSE_OBJECT || d === CLOSE_ARRAY) {
      depth--;
      if (depth === 0) return j + 1;
    }
    j++;
  }
  return j;
}

/** True when `value` is an object or array and the text at `i` is one of the same kind. */
function sameKind(text: string, i: number, value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  return text.charCodeAt(i) === (Array.isArray(value) ? OPEN_ARRAY : OPEN_OBJECT);
}

/** Records the payload members of `value` (parsed from the text at `i`) and searches its children. */
function walk(text: string, i: number, value: object, depth: number, keys: readonly PayloadKey[]): void {
  if (Array.isArray(value)) {
    i = skipSpace(text, i + 1);
    for (let n = 0; text.charCodeAt(i) !== CLOSE_ARRAY; n++) {
      const end = valueEnd(text, i);
      const item: unknown = value[n];
      if (depth + 1 < MAX_DEPTH && sameKind(text, i, item)) walk(text, i, item as object, depth + 1, keys);
      i = skipSpace(text, end);
      if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
    }
    return;
  }
  // A repeated key's children are searched in each of its values' texts, in order, against the value
  // JSON.parse kept (the last), so the last text's sources are the ones left. A text is searched only
  // for a value of its own kind, which keeps the scan in step with the text whatever the value holds;
  // a source recorded from an earlier text is only used while its value is the member's (sourceOf).
  const obj = value as Record<string, unknown> & WithSources;
  i = skipSpace(text, i + 1);
  while (text.charCodeAt(i) !== CLOSE_OBJECT) {
    const keyEnd = stringEnd(text, i);
    const raw = text.slice(i + 1, keyEnd - 1);
    const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const end = valueEnd(text, start);
    const child = obj[key];
    if (keys.includes(key as PayloadKey)) {
      let kept = obj[SOURCES];
      if (kept === undefined) {
        kept = {};
        Object.defineProperty(obj, SOURCES, { value: kept });
      }
      kept[key as PayloadKey] = { value: child, text: text.slice(start, end) };
    } else if (depth + 1 < MAX_DEPTH && sameKind(text, start, child)) {
      walk(text, start, child as object, depth + 1, keys);
    }
    i = skipSpace(text, end);
    if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
  }
}
