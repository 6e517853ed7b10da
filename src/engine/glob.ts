// Redis-style glob patterns (PSUBSCRIBE, API `channels`, ws4redis facility rules): `*`, `?`,
// `[abc]`, `[^a]`, `[a-z]`, `\x`. Matched without backtracking: a pattern comes from clients, and a
// regular expression with one `.*` per `*` takes exponential time on `*a*a*a…b` against `aaaa…`,
// stopping the event loop. Here a match is one pass over the name that goes back only to just
// after the last `*` seen: at worst the name's length times the pattern's.

/** A compiled pattern. */
export interface GlobMatcher {
  /** True when the whole of `name` matches. */
  test(name: string): boolean;
}

// One token per pattern position: a code unit to equal, any one code unit, any run, or a class.
const ANY = -1;
const STAR = -2;

interface CharClass {
  readonly negate: boolean;
  /** Inclusive ranges, as pairs of code units. */
  readonly ranges: readonly number[];
}

type Token = number | CharClass;

/** Compiles a Redis glob pattern. */
export function compileGlob(glob: string): GlobMatcher {
  const tokens = parse(glob);
  if (tokens.every((t) => typeof t === 'number' && t >= 0)) {
    const literal = tokens.map((t) => String.fromCharCode(t as number)).join('');
    return { test: (name) => name === literal };
  }
  return { test: (name) => matches(tokens, name) };
}

function parse(glob: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charCodeAt(i);
    if (c === 0x2a /* * */) {
      if (tokens[tokens.length - 1] !== STAR) tokens.push(STAR);
    } else if (c === 0x3f /* ? */) tokens.push(ANY);
    else if (c === 0x5c /* \ */ && i + 1 < glob.length) tokens.push(glob.charCodeAt(++i));
    else if (c === 0x5b /* [ */) {
      const parsed = parseClass(glob, i + 1);
      if (!parsed) tokens.push(c);
      else {
        tokens.push(parsed.cls);
        i = parsed.end;
      }
    } else tokens.push(c);
  }
  return tokens;
}

/** The class whose body starts at `i`, and the index of its `]`; undefined when it is not closed. */
function parseClass(glob: string, i: number): { cls: CharClass; end: number } | undefined {
  const open = i;
  let negate = false;
  if (glob[i] === '^') {
    negate = true;
    i++;
  }
  const ranges: number[] = [];
  // A `]` right after `[` is a member, as in the pattern compiler this replaces; after `[^` it closes
  // the class (`[^]` is any one character, as in Redis).
  for (; i < glob.length; i++) {
    let c = glob.charCodeAt(i);
    if (c === 0x5d /* ] */ && i !== open) return { cls: { negate, ranges }, end: i };
    if (c === 0x5c /* \ */ && i + 1 < glob.length) c = glob.charCodeAt(++i);
    if (glob[i + 1] === '-' && i + 2 < glob.length && glob[i + 2] !== ']') {
      let hi = glob.charCodeAt(i + 2);
      i += 2;
      if (hi === 0x5c && i + 1 < glob.length) hi = glob.charCodeAt(++i);
      ranges.push(Math.min(c, hi), Math.max(c, hi));
    } else ranges.push(c, c);
  }
  return undefined;
}

function matchesOne(token: Token, c: number): boolean {
  if (typeof token === 'number') return token === ANY || token === c;
  let inside = false;
  const r = token.ranges;
  for (let k = 0; k < r.length && !inside; k += 2) inside = c >= r[k]! && c <= r[k + 1]!;
  return inside !== token.negate;
}

function matches(tokens: readonly Token[], name: string): boolean {
  let t = 0;
  let s = 0;
  let star = -1; // the token after the last `*` seen, and where in the name it was tried from
  let from = 0;
  while (s < name.length) {
    const token = tokens[t];
    if (token === STAR) {
      star = ++t;
      from = s;
    } else if (token !== undefined && matchesOne(token, name.charCodeAt(s))) {
      t++;
      s++;
    } else if (star >= 0) {
      t = star;
      s = ++from;
    } else return false;
  }
  while (tokens[t] === STAR) t++;
  return t === tokens.length;
}
