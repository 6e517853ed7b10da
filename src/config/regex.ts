// Regular expressions from the configuration (channel_regex, the tokens' audience_regex and
// issuer_regex) are matched against what clients send. They are compiled by re2js, the JavaScript
// port of RE2: the syntax of Go's regexp, which Centrifugo's configurations are written in (`\A`,
// `\z`, `\pL`, `(?i)`, `(?P<name>…)`, `{1,64}`), and matching in time linear in the input, so no
// name a client sends can make a match slow. Like RE2 there are no backreferences or lookaround.
import { RE2JS } from 're2js';

/** A configured expression: `test` finds a match anywhere in the text (Go's MatchString). */
export interface LinearRegExp {
  test(text: string): boolean;
}

/** Compiles a configured expression; throws when it is not valid RE2 syntax. */
export function linearRegExp(source: string): LinearRegExp {
  const re = RE2JS.compile(source);
  return { test: (text) => re.matcher(text).find() };
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
