// The application's backend in the proxy tests: a real HTTP server on 127.0.0.1 that records every
// request and answers what the test's `answer` returns.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the backend received. */
export interface BackendRequest {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: any;
  readonly text: string;
}

/** A running backend: its URL, and `close()`. */
export interface Backend {
  readonly url: string;
  close(): void;
}

/**
 * Starts a backend that pushes each request onto `seen` and answers with `answer(request)`: an
 * object (sent as JSON), a string (sent as written), `[status, text]`, or a promise of one of these.
 */
export async function startBackend(answer: (req: BackendRequest) => unknown, seen: BackendRequest[]): Promise<Backend> {
  const server: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', async () => {
      const s: BackendRequest = { path: req.url ?? '', headers: req.headers, body: JSON.parse(text), text };
      seen.push(s);
      const out = await answer(s);
      if (res.destroyed) return;
      if (Array.isArray(out)) res.writeHead(out[0] as number).end(out[1] as string);
      else res.writeHead(200, { 'Content-Type': 'application/json' }).end(typeof out === 'string' ? out : JSON.stringify(out));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
