// The numeric codes of the Centrifugo client protocol: one definition, imported by everything that
// speaks the native dialect. Ranges decide what centrifuge-js does: see docs/protocols.md.

/** A reply error `{code, message, temporary?}`. */
export interface ProtocolError {
  readonly code: number;
  readonly message: string;
  readonly temporary?: boolean;
}

/** Errors sent in replies. Temporary ones make the SDK retry with backoff. */
export const Errors = {
  internal: { code: 100, message: 'internal server error', temporary: true },
  unauthorized: { code: 101, message: 'unauthorized' },
  unknownChannel: { code: 102, message: 'unknown channel' },
  permissionDenied: { code: 103, message: 'permission denied' },
  methodNotFound: { code: 104, message: 'method not found' },
  alreadySubscribed: { code: 105, message: 'already subscribed' },
  limitExceeded: { code: 106, message: 'limit exceeded' },
  badRequest: { code: 107, message: 'bad request' },
  notAvailable: { code: 108, message: 'not available' },
  tokenExpired: { code: 109, message: 'token expired' },
  expired: { code: 110, message: 'expired' },
  tooManyRequests: { code: 111, message: 'too many requests', temporary: true },
  unrecoverablePosition: { code: 112, message: 'unrecoverable position' },
} as const satisfies Record<string, ProtocolError>;

/** A server-initiated disconnect: a WebSocket close code and a short reason. */
export interface Disconnect {
  readonly code: number;
  readonly reason: string;
}

/** Disconnect codes. 3000–3499: the client reconnects; 3500–3999: terminal. */
export const Disconnects = {
  connectionClosed: { code: 3000, reason: 'connection closed' },
  shutdown: { code: 3001, reason: 'shutdown' },
  serverError: { code: 3004, reason: 'internal server error' },
  expired: { code: 3005, reason: 'connection expired' },
  subExpired: { code: 3006, reason: 'subscription expired' },
  slow: { code: 3008, reason: 'slow' },
  writeError: { code: 3009, reason: 'write error' },
  insufficientState: { code: 3010, reason: 'insufficient state' },
  forceReconnect: { code: 3011, reason: 'force reconnect' },
  noPong: { code: 3012, reason: 'no pong' },
  tooManyRequests: { code: 3013, reason: 'too many requests' },
  stateInvalidated: { code: 3014, reason: 'state invalidated' },
  invalidToken: { code: 3500, reason: 'invalid token' },
  badRequest: { code: 3501, reason: 'bad request' },
  stale: { code: 3502, reason: 'stale' },
  forceNoReconnect: { code: 3503, reason: 'force disconnect' },
  connectionLimit: { code: 3504, reason: 'connection limit' },
  channelLimit: { code: 3505, reason: 'channel limit' },
  inappropriateProtocol: { code: 3506, reason: 'inappropriate protocol' },
  permissionDenied: { code: 3507, reason: 'permission denied' },
  notAvailable: { code: 3508, reason: 'not available' },
  tooManyErrors: { code: 3509, reason: 'too many errors' },
} as const satisfies Record<string, Disconnect>;

/** Unsubscribe push codes. Below 2500 the subscription ends; from 2500 the client resubscribes. */
export const Unsubscribes = {
  server: { code: 2000, reason: 'server unsubscribe' },
  insufficientState: { code: 2500, reason: 'insufficient state' },
  expired: { code: 2501, reason: 'subscription expired' },
  stateInvalidated: { code: 2502, reason: 'state invalidated' },
} as const satisfies Record<string, Disconnect>;

/** WebSocket close code for an incoming message over the size limit (the SDK treats it as terminal). */
export const CLOSE_MESSAGE_TOO_BIG = 1009;

/** A protocol error raised inside command handling; becomes a reply error. */
export class ReplyError extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message);
  }
}

/** A failure that ends the connection with a disconnect code. */
export class DisconnectError extends Error {
  constructor(readonly disconnect: Disconnect) {
    super(disconnect.reason);
  }
}
