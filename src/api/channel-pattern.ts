// The `channels` API method's `pattern`, read as Centrifugo reads it (the gobwas/glob syntax, with no
// separators): `*` any run of characters, `?` one character, `[abc]` / `[a-z]` one of them, `[!abc]`
// one not among them, `{a,b}` either alternative (each itself a pattern), `\` takes the next
// character as it is. (Webdis's PSUBSCRIBE patterns are Redis's, a different syntax: engine/glob.ts.)
import { Errors, ReplyError } from '../dialects/native/codes.js';

/** A character as itself, outside a class and inside one (where `-` is special too). */
const escapeChar = (c: string): string => c.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
const escapeInClass = (c: string): string => c.replace(/[\\^\]\[-]/g, '\\$&');

/** A matcher for `pattern`; throws ReplyError 107 for a pattern that does not parse. */
export function compileChannelPattern(pattern: string): RegExp {
  let i = 0;
  const fail = (why: string): never => {
    throw new ReplyError({ ...Errors.badRequest, message: `pattern: ${why}` });
  };
  // Reads until the end, or (inside braces) until a `,` or `}` it leaves unread.
  const sequence = (inBraces: boolean): string => {
    let out = '';
    while (i < pattern.length) {
      const c = pattern[i]!;
      if (inBraces && (c === ',' || c === '}')) return out;
      i++;
      if (c === '\\') {
        if (i >= pattern.length) fail('ends with an escape');
        out += escapeChar(pattern[i++]!);
      } else if (c === '*') out += '[\\s\\S]*';
      else if (c === '?') out += '[\\s\\S]';
      else if (c === '[') out += charClass();
      else if (c === '{') {
        const alternatives = [sequence(true)];
        while (pattern[i] === ',') {
          i++;
          alternatives.push(sequence(true));
        }
        if (pattern[i] !== '}') fail('an unclosed {');
        i++;
        out += `(?:${alternatives.join('|')})`;
      } else out += escapeChar(c);
    }
    return out;
  };
  const charClass = (): string => {
    const not = pattern[i] === '!';
    if (not) i++;
    let body = '';
    let first = true;
    while (i < pattern.length && (pattern[i] !== ']' || first)) {
      let c = pattern[i++]!;
      if (c === '\\' && i < pattern.length) c = pattern[i++]!;
      first = false;
      if (pattern[i] === '-' && i + 1 < pattern.length && pattern[i + 1] !== ']') {
        let to = pattern[i + 1]!;
        i += 2;
        if (to === '\\' && i < pattern.length) to = pattern[i++]!;
        if (to < c) fail(`a range ${c}-${to} that runs backwards`);
        body += `${escapeInClass(c)}-${escapeInClass(to)}`;
      } else body += escapeInClass(c);
    }
    if (pattern[i] !== ']') fail('an unclosed [');
    i++;
    return `[${not ? '^' : ''}${body}]`;
  };
  const source = sequence(false);
  return new RegExp(`^${source}$`, 'u');
}
