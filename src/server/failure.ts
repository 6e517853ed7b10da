// The one answer to a request that failed unexpectedly, for every HTTP route.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

/** Logs the failure and answers 500, or cuts the response off when its head already went out. */
export function requestFailed(log: Logger, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  log.error({ err, url: req.url }, 'request failed');
  if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' }).end('internal server error\n');
  else res.destroy();
}
