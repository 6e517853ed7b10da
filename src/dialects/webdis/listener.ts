// The Webdis dialect's own listener (port 7379 by default), so a page written for Webdis works by
// pointing it at Herald. Webdis's HTTP parser treats any request carrying an `Upgrade` header as a
// WebSocket handshake, even without `Connection: Upgrade`; Node's does not, so the first packet of
// a connection is looked at, and such a hand-written handshake gets the missing header before Node
// parses it. Everything else reaches Node's HTTP server unchanged.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { listen } from '../../server/listen.js';

const FIRST_BYTES_TIMEOUT_MS = 60_000;

/** What the listener hands its requests and upgrades to. */
export interface ListenerHandlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Largest request body answered (webdis.http_max_body_size): a larger one is refused before its `100 Continue`. */
  readonly maxBodySize: number;
}

/** A TCP listener feeding an HTTP server. */
export class WebdisListener {
  private readonly http: HttpServer;
  private readonly tcp: TcpServer;
  private readonly sockets = new Set<Socket>();

  constructor(handlers: ListenerHandlers) {
    // Webdis needs no Host header; hand-written clients often leave it out.
    this.http = createHttpServer({ requireHostHeader: false }, handlers.request);
    this.http.on('upgrade', handlers.upgrade);
    // `Expect: 100-continue`: a body its Content-Length already says is too large gets its 413 in
    // place of the `100 Continue` (which Node would send by itself), so the client does not upload it.
    this.http.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (!(Number(req.headers['content-length']) > handlers.maxBodySize)) res.writeContinue();
      handlers.request(req, res);
    });
    this.http.on('clientError', (_err, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.tcp = createTcpServer((socket) => this.onConnection(socket));
  }

  /** Listens on `address:port` (port 0: a free one); a failure is HERALD_ERR_LISTEN. */
  listen(port: number, address: string, log: Logger): Promise<void> {
    return listen(this.tcp, port, address, log, 'webdis');
  }

  /** The bound port (0 before listen). */
  get port(): number {
    return (this.tcp.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.http.closeAllConnections();
    return new Promise((resolve) => {
      if (!this.tcp.listening) return resolve();
      this.tcp.close(() => resolve());
    });
  }

  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    // A connection that never sends a request is not kept forever.
    socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(withConnectionUpgrade(first));
      this.http.emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  }
}

/**
 * A GET whose head (all in `chunk`) has an `Upgrade` header but no `Connection: upgrade`, with
 * `Connection: Upgrade` added; any other chunk as it is.
 */
export function withConnectionUpgrade(chunk: Buffer): Buffer {
  if (chunk.length < 4 || chunk.toString('latin1', 0, 4) !== 'GET ') return chunk;
  const head = chunk.toString('latin1', 0, Math.min(chunk.length, 16 * 1024));
  const end = head.indexOf('\r\n\r\n');
  if (end < 0) return chunk;
  const lines = head.slice(0, end).split('\r\n');
  const headers = lines.slice(1);
  if (!headers.some((h) => /^upgrade\s*:/i.test(h))) return chunk;
  if (headers.some((h) => /^connection\s*:.*\bupgrade\b/i.test(h))) return chunk;
  const kept = headers.filter((h) => !/^connection\s*:/i.test(h));
  const patched = [lines[0], ...kept, 'Connection: Upgrade'].join('\r\n');
  return Buffer.concat([Buffer.from(patched, 'latin1'), chunk.subarray(end)]);
}
