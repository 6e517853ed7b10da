// Origin checks for browser WebSocket upgrades: same-origin pages and the configured origins only.
import type { IncomingMessage } from 'node:http';

/** True when the upgrade's Origin may connect: none given (not a browser), same host, or allowed by a pattern. */
export function originAllowed(req: IncomingMessage, allowed: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (!origin || origin === 'null') return origin === undefined;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  if (host === req.headers.host) return true;
  return allowed.some((pattern) => globMatch(pattern.toLowerCase(), origin.toLowerCase()));
}

function globMatch(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  return re.test(value);
}
