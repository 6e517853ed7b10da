// The `channels` API method's `pattern`, read as Centrifugo reads it (the gobwas/glob syntax, with no
// separators): `*` any run of characters, `?` one character, `[abc]` / `[a-z]` one of them, `[!abc]`
// one not among them, `{a,b}` either alternative (each itself a pattern), `\` takes the next
// character as it is. Matched without backtracking: each alternative (the braces expanded) is
// written as a Redis glob and compiled by engine/glob.ts, whose single pass does not take
// exponential time on `*a*a*a…b` as a regular expression would. The pattern is sent to every node.
import { Errors, ReplyError } from '../dialects/native/codes.js';
import { compileGlob, type GlobMatcher } from '../engine/glob.js';

/** Most alternatives the braces of one pattern may expand to. */
const MAX_ALTERNATIVES = 256;

/** Characters Redis's glob reads as syntax, escaped when meant as themselves. */
const REDIS_SPECIAL = new Set(['*', '?', '[', ']', '\\', '^', '-']);
const literal = (c: string): string => (REDIS_SPECIAL.has(c) ? `\\${c}` : c);

/** A matcher for `pattern`; throws ReplyError 107 for a pattern that does not parse. */
export function compileChannelPattern(pattern: string): GlobMatcher {
  const chars = [...pattern]; // by code point
  let i = 0;
  const fail = (why: string): never => {
    throw new ReplyError({ ...Errors.badRequest, message: `pattern: ${why}` });
  };
  const product = (a: string[], b: string[]): string[] => {
    if (a.length * b.length > MAX_ALTERNATIVES) fail(`more than ${MAX_ALTERNATIVES} alternatives`);
    return a.flatMap((x) => b.map((y) => x + y));
  };
  // The alternatives (Redis globs) of what follows, up to the end or (inside braces) a `,` or `}`.
  const sequence = (inBraces: boolean): string[] => {
    let out = [''];
    while (i < chars.length) {
      const c = chars[i]!;
      if (inBraces && (c === ',' || c === '}')) return out;
      i++;
      if (c === '\\') {
        if (i >= chars.length) fail('ends with an escape');
        out = product(out, [literal(chars[i++]!)]);
      } else if (c === '*' || c === '?') out = product(out, [c]);
      else if (c === '[') out = product(out, [charClass()]);
      else if (c === '{') {
        const alternatives = [...sequence(true)];
        while (chars[i] === ',') {
          i++;
          alternatives.push(...sequence(true));
        }
        if (chars[i] !== '}') fail('an unclosed {');
        i++;
        out = product(out, alternatives);
      } else out = product(out, [literal(c)]);
    }
    return out;
  };
  const charClass = (): string => {
    const not = chars[i] === '!';
    if (not) i++;
    let body = '';
    let first = true;
    while (i < chars.length && (chars[i] !== ']' || first)) {
      let c = chars[i++]!;
      if (c === '\\' && i < chars.length) c = chars[i++]!;
      first = false;
      if (chars[i] === '-' && i + 1 < chars.length && chars[i + 1] !== ']') {
        let to = chars[i + 1]!;
        i += 2;
        if (to === '\\' && i < chars.length) to = chars[i++]!;
        if (to.codePointAt(0)! < c.codePointAt(0)!) fail(`a range ${c}-${to} that runs backwards`);
        body += `${literal(c)}-${literal(to)}`;
      } else body += literal(c);
    }
    if (chars[i] !== ']') fail('an unclosed [');
    i++;
    return `[${not ? '^' : ''}${body}]`;
  };
  const matchers = sequence(false).map(compileGlob);
  return matchers.length === 1 ? matchers[0]! : { test: (name) => matchers.some((m) => m.test(name)) };
}
