// Regular expressions from the configuration (channel_regex, the tokens' audience_regex and
// issuer_regex) are matched against what clients send: they run on V8's linear-time engine (the `l`
// flag), as Go's RE2 runs Centrifugo's, so no pattern can make one match take exponential time. Like
// RE2 it has no backreferences or lookaround; Go's named groups `(?P<name>…)` are read as `(?<name>…)`.
import { setFlagsFromString } from 'node:v8';

// The engine is behind a V8 flag in Node 20; it only adds the `l` flag, leaving other expressions as they are.
setFlagsFromString('--enable-experimental-regexp-engine');

/** Compiles a configured expression to run in linear time; throws when it cannot (see above). */
export function linearRegExp(source: string): RegExp {
  return new RegExp(source.replace(/\(\?P</g, '(?<'), 'l');
}

/** The reason a configured expression is refused, or undefined when it compiles. */
export function regexProblem(source: string): string | undefined {
  try {
    linearRegExp(source);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
