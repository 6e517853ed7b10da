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
  const raw = pathname.slice(prefix.length);
  try {
    return decodeURIComponent(raw);
  } catch {
    // A malformed escape is kept as written rather than refusing the page.
    return raw;
  }
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
