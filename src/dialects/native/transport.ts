// What a native session stands on: how its connection was opened, and the connection itself (a
// WebSocket, websocket.ts, or an HTTP stream or SSE response, emulation.ts).
import type { OutboxSocket } from '../../hub/outbox.js';
import type { Pausable } from '../../server/inbound.js';

/** How a session's connection was opened. */
export interface TransportOptions {
  /** `websocket`, `http_stream` or `sse` (the proxies tell the backend). */
  readonly name: string;
  /** `cf_ws_frame_ping_pong`: WebSocket ping frames instead of protocol pings. */
  readonly framePingPong: boolean;
  /** Headers of the client's request that the proxies pass on (forwardedHeaders). */
  readonly proxyHeaders?: Record<string, string>;
  /** The user `client.user_id_http_header` names in the client's request (a gateway authenticated it). */
  readonly headerUser?: string | undefined;
  /**
   * HTTP streaming or SSE: the session id the client sends its commands to `/emulation` with (a
   * secret, unlike the client id, which presence shows to others).
   */
  readonly emulatedSession?: string;
}

/** The connection under a native session: a WebSocket, or an HTTP stream (emulation.ts). */
export interface NativeSocket extends OutboxSocket, Pausable {
  /** Ends the connection with a disconnect code and reason. */
  close(code: number, reason: string): void;
  /** Cuts the connection at once. */
  terminate(): void;
  /** Sends a WebSocket ping frame (`cf_ws_frame_ping_pong` only). */
  ping(): void;
  /**
   * HTTP streaming and SSE: resolves with true once the session takes `/emulation` commands again,
   * false once its stream has ended; undefined when too many requests are held already.
   */
  whenTaking?(): Promise<boolean> | undefined;
}
