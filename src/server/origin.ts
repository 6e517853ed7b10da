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

/**
 * What a refusal's log line says of the request: its Origin and the Host it was compared with (behind
 * a reverse proxy, the Host the proxy sent, which is not the page's unless the proxy passes it on).
 */
export function originFields(req: IncomingMessage): { origin: string | undefined; host: string | undefined } {
  return { origin: req.headers.origin, host: req.headers.host };
}

function globMatch(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  return re.test(value);
}
