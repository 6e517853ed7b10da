// HTTP streaming and SSE, Centrifugo's bidirectional emulation: a native session over one long HTTP
// response, for clients that cannot hold a WebSocket (a proxy that refuses the upgrade). The connect
// command comes with the request that opens the stream; the client's later commands come by
// `POST /emulation` naming the session and its node, on whichever node the request reaches: one for
// another node's session goes there as a control message. Replies and pushes go down the stream,
// one JSON line each (HTTP streaming) or one `data:` event each (SSE).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ControlMessage } from '../../api/control.js';
import type { MessageStream } from '../../hub/outbox.js';
import { readBodyThen } from '../../server/body.js';
import { originAllowed, originFields } from '../../server/origin.js';
import { encodePush } from './codec.js';
import { userFromHeader } from './identity.js';
import { forwardedHeaders } from './proxy.js';
import { Disconnects } from './codes.js';
import type { NativeContext } from './context.js';
import type { SessionRegistry } from './registry.js';
import { NativeSession } from './session.js';
import type { NativeSocket } from './transport.js';

type StreamKind = 'http_stream' | 'sse';

/** What a stream's answer carries so that no proxy or browser cache holds its messages back. */
const NO_CACHE = {
  'Cache-Control': 'private, no-cache, no-store, must-revalidate, max-age=0',
  Pragma: 'no-cache',
  Expires: '0',
  'X-Accel-Buffering': 'no',
};

const NEWLINE = Buffer.from('\n');
const SSE_DATA = Buffer.from('data: ');
const SSE_END = Buffer.from('\n\n');
const CR = 0x0d;

/** Most `/emulation` requests of one session held, waiting for it to take their commands. */
const MAX_HELD_REQUESTS = 1024;

/** The connection of an HTTP streaming or SSE session: its response, written to while it lasts. */
export class StreamSocket implements NativeSocket, MessageStream {
  readyState = 1;
  /** `/emulation` requests held while the session has too many commands waiting (see emulateHere). */
  private held: Array<(taking: boolean) => void> = [];

  constructor(
    private readonly res: ServerResponse,
    private readonly kind: StreamKind,
  ) {}

  /** Bytes written to the response and not yet sent. */
  get bufferedAmount(): number {
    return this.res.writableLength;
  }

  writeMessages(first: Buffer, rest: ReadonlyArray<Buffer | undefined> | undefined, n: number): void {
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const message = i === 0 ? first : rest![i - 1]!;
      // A message is one line of JSON (the codec keeps `\n` out); SSE also ends a line at `\r`,
      // which JSON holds only as whitespace between tokens, so it goes.
      if (this.kind === 'sse') parts.push(SSE_DATA, message.includes(CR) ? withoutCR(message) : message, SSE_END);
      else parts.push(message, NEWLINE);
    }
    this.res.write(Buffer.concat(parts));
  }

  /** Ends the stream after a `disconnect` push: its code tells the client whether to reconnect. */
  close(code: number, reason: string): void {
    if (this.readyState !== 1) return;
    this.writeMessages(encodePush('disconnect', { code, reason }), undefined, 1);
    this.readyState = 2;
    this.res.end();
  }

  terminate(): void {
    this.readyState = 3;
    if (!this.res.writableFinished) this.res.destroy();
    this.release();
  }

  /** Never called: these transports use the protocol's pings. */
  ping(): void {}

  // No socket to stop reading: while too many of the session's commands wait, its `/emulation`
  // requests are held unanswered instead (whenTaking), which holds back a client that waits for
  // each answer, as a WebSocket's full TCP window does.
  pause(): void {}

  /** The session takes commands again: the held requests go on, in the order they came. */
  resume(): void {
    this.release();
  }

  /**
   * Resolves with true once the session takes commands again, false once the stream has ended;
   * undefined, at once, when MAX_HELD_REQUESTS are held already.
   */
  whenTaking(): Promise<boolean> | undefined {
    if (this.readyState !== 1) return Promise.resolve(false);
    if (this.held.length >= MAX_HELD_REQUESTS) return undefined;
    return new Promise((resolve) => this.held.push(resolve));
  }

  /** Lets every held request go on: the session takes commands again, or (readyState no longer 1) the stream ended. */
  release(): void {
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    const taking = this.readyState === 1;
    for (const go of held) go(taking);
  }
}

function withoutCR(message: Buffer): Buffer {
  return Buffer.from(message.toString('utf8').replace(/\r/g, ''));
}

/**
 * Hands the commands of an `/emulation` request that reached the session's own node to it; resolves
 * with the HTTP status to answer: 204 (also when the session is gone: its stream has ended). While
 * too many of the session's commands wait, the request is held until it takes them again (as
 * Centrifugo takes every request, the client's pongs among them); 429 only past MAX_HELD_REQUESTS held.
 */
export async function emulateHere(registry: SessionRegistry<NativeSession>, session: string, data: string): Promise<number> {
  for (;;) {
    const target = registry.emulatedSession(session);
    if (!target || target.closed) return 204;
    if (target.emulatedFrame(data)) return 204;
    const taking = target.whenTakingEmulated();
    if (taking === undefined) return 429;
    if (!(await taking)) return 204; // the stream ended meanwhile
  }
}

/**
 * Hands commands another node passed on (having answered 204 for them) to this node's session. They
 * cannot be held back: past the bound the session ends with 3013 (too many requests), and the client
 * reconnects and recovers instead of waiting for replies that would never come.
 */
export function feedPassedOn(registry: SessionRegistry<NativeSession>, session: string, data: string): void {
  const target = registry.emulatedSession(session);
  if (!target || target.closed || target.emulatedFrame(data)) return;
  target.ctx.log.warn({ client: target.id }, 'emulation commands from another node while too many of the session\'s wait: disconnected (3013)');
  target.close(Disconnects.tooManyRequests);
}

/**
 * The field of a node's announcement saying it listens on a control channel of its own (the engine's
 * publishControl with `node`); kept out of the API's `info`.
 */
export const NODE_CHANNEL = 'node_channel';

/** How long a read of the live nodes answers for a node it found. */
const NODE_KNOWN_MS = 3_000;
/** How long it answers for one it did not find (a node just started is looked up again after this). */
const NODE_UNKNOWN_MS = 1_000;

/** The HTTP streaming, SSE and `/emulation` endpoints of one node, as the config enables them. */
export class NativeEmulationEndpoints {
  /** The live nodes, by id, each with whether it listens on a control channel of its own (NODE_CHANNEL). */
  private nodes: { ids: Map<string, boolean>; at: number } | undefined;
  /** A read of the live nodes under way: requests meanwhile wait for it rather than read again. */
  private reading: Promise<Map<string, boolean>> | undefined;
  private readonly log: Logger;

  /** `sendControl` sends a control message to one node (`node`), or to every node. */
  constructor(
    private readonly ctx: NativeContext,
    private readonly sendControl: (message: ControlMessage, node: string | undefined) => Promise<void>,
  ) {
    this.log = ctx.log;
  }

  /** Answers the request when its path is an enabled endpoint of these; false otherwise. */
  handleRequest(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const { http_stream, sse, emulation_path, allowed_origins } = this.ctx.config.client;
    const path = url.pathname;
    let kind: StreamKind | 'emulation';
    if (http_stream.enabled && path === http_stream.path) kind = 'http_stream';
    else if (sse.enabled && path === sse.path) kind = 'sse';
    else if ((http_stream.enabled || sse.enabled) && path === emulation_path) kind = 'emulation';
    else return false;

    if (!originAllowed(req, allowed_origins)) {
      this.log.info({ ...originFields(req), path }, 'origin not allowed (see client.allowed_origins)');
      res.writeHead(403, { 'Content-Type': 'text/plain' }).end('origin not allowed\n');
      return true;
    }
    const cors = corsHeaders(req);
    const methods = kind === 'sse' ? 'GET, POST, OPTIONS' : 'POST, OPTIONS';
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': methods, 'Access-Control-Max-Age': '300' }).end();
      return true;
    }
    if (kind === 'sse' && req.method === 'GET') {
      const connect = url.searchParams.get('cf_connect');
      if (!connect) return plain(res, 400, cors, 'cf_connect is missing: the connect command goes in it\n');
      this.openStream(req, res, 'sse', cors, Buffer.from(connect, 'utf8'));
      return true;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { ...cors, Allow: methods, 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return true;
    }
    if (kind === 'http_stream' && mediaType(req) === 'application/octet-stream') {
      return plain(res, 415, cors, 'protobuf is not supported: use JSON\n');
    }
    readBodyThen(req, this.ctx.config.client.max_message_size, (body, err) => {
      if (err) return; // the client is gone
      if (!body) {
        res.writeHead(413, { ...cors, Connection: 'close', 'Content-Type': 'text/plain' }).end('request body too large (client.max_message_size)\n');
        return;
      }
      if (kind === 'emulation') this.emulate(res, cors, body);
      else if (body.length === 0) plain(res, 400, cors, 'the body holds no connect command\n');
      else this.openStream(req, res, kind, cors, body);
    });
    return true;
  }

  /** Answers 200, keeps the response open and runs a session on it, starting with `connect`. */
  private openStream(req: IncomingMessage, res: ServerResponse, kind: StreamKind, cors: Record<string, string>, connect: Buffer): void {
    const refused = this.ctx.limits.admit();
    if (refused) return void plain(res, 503, cors, this.ctx.limits.refusalText(refused));
    const contentType = kind === 'sse' ? 'text/event-stream; charset=utf-8' : 'application/json';
    res.writeHead(200, { ...cors, ...NO_CACHE, 'Content-Type': contentType });
    // The headers go at once (with a first line for SSE, as Centrifugo writes), so the client knows
    // the stream is open before any message.
    if (kind === 'sse') res.write('\r\n');
    else res.flushHeaders();
    const socket = new StreamSocket(res, kind);
    const proxyHeaders = forwardedHeaders(this.ctx.config, req.headers);
    const headerUser = userFromHeader(this.ctx.config, req);
    const session = new NativeSession(this.ctx, socket, { name: kind, framePingPong: false, emulatedSession: randomUUID(), proxyHeaders, headerUser });
    res.on('close', () => {
      socket.readyState = 3;
      session.cleanup();
      socket.release();
    });
    session.onFrame(connect);
  }

  /** `POST /emulation`: `{session, node, data}`, data being the commands' text (JSON lines). */
  private emulate(res: ServerResponse, cors: Record<string, string>, body: Buffer): void {
    let req: unknown;
    try {
      req = JSON.parse(body.toString('utf8'));
    } catch {
      return void plain(res, 400, cors, 'the body is not JSON\n');
    }
    const { session, node, data } = (req ?? {}) as Record<string, unknown>;
    if (typeof session !== 'string' || typeof node !== 'string' || typeof data !== 'string') {
      return void plain(res, 400, cors, 'expected {"session": string, "node": string, "data": string}\n');
    }
    if (node === this.ctx.nodeId) {
      void emulateHere(this.ctx.registry, session, data).then((status) => {
        if (!res.destroyed) res.writeHead(status, cors).end();
      });
      return;
    }
    this.forward(session, node, data).then(
      (status) => res.writeHead(status, cors).end(),
      (err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'could not pass an emulation request to its node');
        res.writeHead(503, cors).end();
      },
    );
  }

  /** Sends commands for another node's session to that node: 204, or 404 when no such node is alive. */
  private async forward(session: string, node: string, data: string): Promise<number> {
    const own = await this.nodeAlive(node);
    if (own === undefined) return 404;
    // To that node alone when it listens on a channel of its own; to every node for one that does
    // not (an older version, during a rolling upgrade: it picks out its own sessions' commands).
    await this.sendControl({ method: 'emulation', params: { session, node, data } }, own ? node : undefined);
    return 204;
  }

  /**
   * Whether `node` announced itself lately (undefined when not), and with a control channel of its
   * own. The engine is read at most once a second for nodes it did not list.
   */
  private async nodeAlive(node: string): Promise<boolean | undefined> {
    const cached = this.nodes;
    const age = cached ? Date.now() - cached.at : Infinity;
    if (cached && (age < NODE_UNKNOWN_MS || (age < NODE_KNOWN_MS && cached.ids.has(node)))) return cached.ids.get(node);
    this.reading ??= this.ctx.engine
      .nodes()
      .then((nodes) => {
        const ids = new Map(nodes.map((n) => [n.uid, n[NODE_CHANNEL] === true] as const));
        this.nodes = { ids, at: Date.now() };
        return ids;
      })
      .finally(() => (this.reading = undefined));
    return (await this.reading).get(node);
  }
}

/** CORS answer headers: the request's origin (already allowed) with credentials, and the headers it asks for. */
function corsHeaders(req: IncomingMessage): Record<string, string> {
  const origin = req.headers.origin;
  if (!origin) return {};
  const out: Record<string, string> = { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' };
  const asked = req.headers['access-control-request-headers'];
  if (asked && asked !== 'null') out['Access-Control-Allow-Headers'] = asked;
  return out;
}

function plain(res: ServerResponse, status: number, cors: Record<string, string>, text: string): true {
  res.writeHead(status, { ...cors, 'Content-Type': 'text/plain' }).end(text);
  return true;
}

/** The request's media type, lower case, without parameters. */
function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}
