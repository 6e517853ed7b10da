// The ws4redis URL scheme: `<path_prefix><facility>?<flags>`. Flags are query keys, read the way
// ws4redis reads `request.GET`: values ignored, keys trimmed and lower-cased, unknown keys ignored.
import { WS4REDIS_FLAGS, type Ws4RedisFlag } from '../../config/schema.js';

/** What a ws4redis URL asks for. */
export interface Ws4RedisRequest {
  /** The facility: the decoded path after the prefix (Django's `path_info` is decoded too). */
  readonly facility: string;
  /** The requested flags, in URL order, each once. */
  readonly flags: readonly Ws4RedisFlag[];
  /** `echo` in the URL: messages equal to this socket's own last one are sent back too. */
  readonly echo: boolean;
}

const KNOWN = new Set<string>(WS4REDIS_FLAGS);

/** The facility of a raw URL path under `prefix`, or undefined when the path is not under it. */
export function facilityOf(pathname: string, prefix: string): string | undefined {
  if (!pathname.startsWith(prefix)) return undefined;
  return decodePath(pathname.slice(prefix.length));
}

/**
 * A URL path decoded as Django sees it (`path_info`): the WSGI server decodes every valid `%XX`
 * escape, Django reads the bytes as UTF-8 and writes a byte that is not part of valid UTF-8 back as
 * an escape (`%FF`); anything that is not an escape (`%ZZ`, a lone `%`) stays as written.
 */
export function decodePath(raw: string): string {
  if (!raw.includes('%')) return raw;
  return raw.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      // Not all valid UTF-8: decode the valid sequences, escape the other bytes again.
      const escapes = run.match(/%[0-9A-Fa-f]{2}/g)!;
      let out = '';
      for (let i = 0; i < escapes.length; ) {
        let taken = 0;
        for (let n = Math.min(4, escapes.length - i); n >= 1 && taken === 0; n--) {
          try {
            out += decodeURIComponent(escapes.slice(i, i + n).join(''));
            taken = n;
          } catch {
            // not a whole character in n bytes
          }
        }
        if (taken === 0) out += escapes[i]!.toUpperCase();
        i += taken || 1;
      }
      return out;
    }
  });
}

/** The flags and `echo` of a raw query string (with or without its leading `?`). */
export function parseFlags(search: string): { flags: Ws4RedisFlag[]; echo: boolean } {
  const flags: Ws4RedisFlag[] = [];
  let echo = false;
  for (const key of new URLSearchParams(search).keys()) {
    const name = key.trim().toLowerCase();
    if (name === 'echo') echo = true;
    else if (KNOWN.has(name) && !flags.includes(name as Ws4RedisFlag)) flags.push(name as Ws4RedisFlag);
  }
  return { flags, echo };
}

/**
 * Reads a ws4redis URL, or returns undefined when its path is not under `prefix`. `target` is the
 * request target as the client sent it (`req.url`): the facility is read from it, not from `url`,
 * which has its `.` and `..` segments resolved. A facility with such a segment is `null`: it is
 * refused, so that no path names a facility other than the one the identity hook is told about.
 */
export function parseRequest(url: URL, prefix: string, target: string): (Omit<Ws4RedisRequest, 'facility'> & { facility: string | null }) | undefined {
  if (facilityOf(url.pathname, prefix) === undefined) return undefined;
  const path = target.startsWith('/') ? target.split('?')[0]! : url.pathname;
  const facility = facilityOf(path, prefix);
  const dotted = facility === undefined || facility.split('/').some((segment) => segment === '.' || segment === '..');
  return { facility: dotted ? null : facility, ...parseFlags(url.search) };
}
