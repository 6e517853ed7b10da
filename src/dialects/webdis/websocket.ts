// Webdis WebSocket upgrades: on `/.json…` and `/` (JSON) and `/.raw…` (RESP), the path chosen by its
// prefix as Webdis does; on any other path the handshake succeeds, as Webdis's does, and the first
// message ends the connection. Standard handshakes go
// through ws's WebSocketServer. Webdis also accepts hand-written ones (no Sec-WebSocket-Version, a
// key that is not 16 base64-encoded bytes, any Upgrade value), which ws refuses: those are
// completed here the way WebSocketServer completes its own, then handed to ws for the framing, so
// every connection gets the same masking, UTF-8, size and ping/pong rules.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { KeepAlive } from '../../server/keepalive.js';
import type { OpenLimits } from '../../server/open-limits.js';
import { refuseUpgrade } from '../../server/upgrade.js';
import type { Acl } from './acl.js';
import type { WireMode } from './pubsub.js';
import { WebdisSession, type SessionContext } from './session.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** What ws accepts as Sec-WebSocket-Key: 16 bytes, base64-encoded. */
const STANDARD_KEY = /^[+/0-9A-Za-z]{22}==$/;
/** What Webdis accepts (any 16–32 characters); kept printable so it cannot split the response. */
const LENIENT_KEY = /^[\x21-\x7e]{16,32}$/;
/** Close code sent to every client when the node shuts down (1001: going away). */
const SHUTDOWN_CLOSE = 1001;

/** What the endpoint needs. */
export interface WebSocketContext extends SessionContext {
  readonly acl: Acl;
  readonly maxMessageSize: number;
  /** webdis.connection_limit and webdis.connection_rate_limit. */
  readonly limits: OpenLimits;
  /** webdis.ping_interval (ms; 0: no pings). */
  readonly pingInterval: number;
}

/**
 * The wire mode of a Webdis WebSocket path, by its prefix as Webdis reads it (`/.json/` and `/.jsonx`
 * are JSON too), or undefined for a path that has none (Webdis upgrades it, then drops the
 * connection at its first message).
 */
export function modeOfPath(path: string): WireMode | undefined {
  if (path === '/' || path.startsWith('/.json')) return 'json';
  if (path.startsWith('/.raw')) return 'raw';
  return undefined;
}

/** Accepts Webdis WebSocket upgrades. */
export class WebdisWebSocketEndpoint {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<WebdisSession>();
  /** Sockets upgraded on a path with no wire mode, until their first message ends them. */
  private readonly modeless = new Set<WebSocket>();
  private readonly keepAlive: KeepAlive;

  /** Open WebSockets, those on a path without a format included (what the connection limit counts). */
  get held(): number {
    return this.sessions.size + this.modeless.size;
  }

  constructor(private readonly ctx: WebSocketContext) {
    this.keepAlive = new KeepAlive(ctx.pingInterval);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: ctx.maxMessageSize,
      perMessageDeflate: false,
      clientTracking: false,
      // Webdis speaks no subprotocol: never select one.
      handleProtocols: () => false,
    });
  }

  /** Completes an upgrade already routed to Webdis (`mode` from modeOfPath). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, mode: WireMode | undefined): void {
    const key = req.headers['sec-websocket-key'];
    const version = req.headers['sec-websocket-version'];
    if (req.method !== 'GET' || typeof key !== 'string') return refuseUpgrade(socket, 400);
    const standard = req.headers.upgrade?.toLowerCase() === 'websocket' && STANDARD_KEY.test(key) && (version === '13' || version === '8');
    if (!standard && !LENIENT_KEY.test(key)) return refuseUpgrade(socket, 400);
    // After the handshake's own checks: a malformed one takes no place of the rate limit.
    const refused = this.ctx.limits.admit();
    if (refused) return refuseUpgrade(socket, 503, this.ctx.limits.refusalText(refused));
    if (standard) {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, mode));
      return;
    }
    const ws = this.completeHandshake(socket, head, key);
    if (ws) this.accept(ws, req, mode);
  }

  /** Closes every socket (1001); clients reconnect to another node. */
  shutdown(): void {
    for (const s of [...this.sessions]) s.end(SHUTDOWN_CLOSE, 'server shutting down');
    this.sessions.clear();
    for (const ws of this.modeless) ws.terminate();
    this.modeless.clear();
    this.keepAlive.stop();
    this.wss.close();
  }

  private accept(ws: WebSocket, req: IncomingMessage, mode: WireMode | undefined): void {
    this.keepAlive.watch(ws);
    if (mode === undefined) {
      // As Webdis: no format for this path, so its first message drops the connection.
      this.modeless.add(ws);
      ws.on('error', () => undefined);
      ws.once('message', () => ws.terminate());
      ws.once('close', () => this.modeless.delete(ws));
      return;
    }
    const allowed = this.ctx.acl.permissions(req.socket.remoteAddress, req.headers.authorization);
    const session = new WebdisSession(this.ctx, ws, mode, allowed);
    this.sessions.add(session);
    ws.once('close', () => this.sessions.delete(session));
  }

  /** The 101 response and a server-side ws WebSocket on the socket, as WebSocketServer makes them. */
  private completeHandshake(socket: Duplex, head: Buffer, key: string): WebSocket | undefined {
    if (!socket.readable || !socket.writable) {
      socket.destroy();
      return undefined;
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`, '', ''].join('\r\n'));
    // `null` address: a server-side socket. The options are those WebSocketServer passes by default.
    const ws = new (WebSocket as unknown as new (address: null, protocols: undefined, options: object) => WebSocket)(null, undefined, {
      autoPong: true,
      maxPendingAutoPongs: 60,
      closeTimeout: 30_000,
    });
    (ws as unknown as { setSocket(socket: Duplex, head: Buffer, options: object): void }).setSocket(socket, head, {
      allowSynchronousEvents: true,
      maxBufferedChunks: 256 * 1024,
      maxFragments: 16 * 1024,
      maxPayload: this.ctx.maxMessageSize,
      skipUTF8Validation: false,
    });
    return ws;
  }
}

