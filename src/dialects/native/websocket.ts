// The native dialect's WebSocket endpoint (`/connection/websocket`): subprotocol choice, the
// incoming size limit, and one NativeSession per accepted socket.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type Server } from 'ws';
import { refuseUpgrade } from '../../server/upgrade.js';
import { Disconnects } from './codes.js';
import type { NativeContext } from './context.js';
import { userFromHeader } from './identity.js';
import { forwardedHeaders } from './proxy.js';
import { NativeSession } from './session.js';

const JSON_PROTOCOL = 'centrifuge-json';

/**
 * The WebSocket of a native session (the endpoint's server makes these): it points at its session, so
 * the socket's event listeners are four functions shared by every connection, not closures made for
 * each one.
 */
class SessionSocket extends WebSocket {
  session: NativeSession | undefined = undefined;
}

// The socket's listeners (`this` is the socket that emitted, a SessionSocket).
function onSocketMessage(this: WebSocket, data: Buffer): void {
  (this as SessionSocket).session?.onFrame(data);
}

function onSocketClose(this: WebSocket): void {
  (this as SessionSocket).session?.cleanup();
}

function onSocketError(this: WebSocket, err: Error): void {
  const session = (this as SessionSocket).session;
  session?.ctx.log.debug({ err, client: session.id }, 'websocket error');
}

function onSocketPong(this: WebSocket): void {
  (this as SessionSocket).session?.onPong();
}

/** Accepts native WebSocket upgrades. */
export class NativeWebSocketEndpoint {
  private readonly wss: Server<typeof SessionSocket>;

  constructor(private readonly ctx: NativeContext) {
    this.wss = new WebSocketServer({
      noServer: true,
      WebSocket: SessionSocket,
      maxPayload: ctx.config.client.max_message_size,
      perMessageDeflate: false,
      // The registry knows every session, opening ones too: ws's own set would cost each connection
      // a close listener (a closure) and a set entry besides.
      clientTracking: false,
      // JSON only: never select centrifuge-protobuf (that client then fails its handshake and backs off).
      handleProtocols: (protocols) => (protocols.has(JSON_PROTOCOL) ? JSON_PROTOCOL : false),
    });
  }

  /** Completes an upgrade request already routed here. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const refused = this.ctx.limits.admit();
    if (refused) return refuseUpgrade(socket, 503, this.ctx.limits.refusalText(refused));
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const format = url.searchParams.get('cf_protocol') ?? url.searchParams.get('format');
      if (format === 'protobuf') {
        ws.close(Disconnects.inappropriateProtocol.code, 'protobuf is not supported: use JSON');
        return;
      }
      const framePingPong = url.searchParams.get('cf_ws_frame_ping_pong') === 'true';
      const proxyHeaders = forwardedHeaders(this.ctx.config, req.headers);
      const headerUser = userFromHeader(this.ctx.config, req);
      ws.session = new NativeSession(this.ctx, ws, { name: 'websocket', framePingPong, proxyHeaders, headerUser });
      ws.on('message', onSocketMessage);
      ws.on('close', onSocketClose);
      ws.on('error', onSocketError);
      if (framePingPong) ws.on('pong', onSocketPong);
    });
  }

  /** Closes every socket with a reconnect code (3001 shutdown): clients come back to another node. */
  shutdown(): void {
    for (const session of this.ctx.registry.everySession()) session.close(Disconnects.shutdown);
    this.wss.close();
  }
}
