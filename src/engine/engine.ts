// The engine: one interface, several implementations (memory.ts; redis later), all held to one
// contract (test/engine/contract.ts). Modelled on centrifugal/centrifuge's broker: publish returns
// a stream position, history reads by since/limit/reverse, delivery goes to one handler per node.

/** A position in a channel's stream: `offset` counts publications (gap-free, from 1) within `epoch`. */
export interface StreamPosition {
  readonly offset: number;
  readonly epoch: string;
}

/** Who published or is present: user id, client id and raw-JSON connection/channel info. */
export interface ClientInfo {
  readonly user: string;
  readonly client: string;
  /** Raw JSON text of the connection info, written to the wire as is. */
  readonly connInfo?: string;
  /** Raw JSON text of the channel info, written to the wire as is. */
  readonly chanInfo?: string;
}

/** One publication as the engine stores and delivers it. */
export interface Publication {
  /** Offset in the channel stream; 0 when the channel keeps no history. */
  readonly offset: number;
  /** The payload, bytes as published (raw JSON text for native channels). */
  readonly data: Buffer;
  readonly info?: ClientInfo;
  readonly tags?: Readonly<Record<string, string>>;
  /** Milliseconds since the epoch, when the publication was accepted. */
  readonly time?: number;
  /** For deliveries on a pattern channel: the channel the publication was made on. */
  readonly channel?: string;
  /** Published for delta compression: subscribers that negotiated it may be sent a delta. */
  readonly delta?: boolean;
}

// Engine channel names. Native channels are used as they are. Raw channels (Webdis, ws4redis) are
// exact Redis channel names carrying payloads as published (no envelope, no history), and pattern
// channels are Redis glob patterns (PSUBSCRIBE); both are marked with a prefix no native channel can
// have (ChannelRules refuses names with a NUL character).
const RAW_MARK = '\u0000r:';
const PATTERN_MARK = '\u0000p:';

/** The engine channel of a raw (plain Redis) channel. */
export function rawChannel(name: string): string {
  return RAW_MARK + name;
}

/** The engine channel of a raw pattern subscription (Redis glob). */
export function patternChannel(pattern: string): string {
  return PATTERN_MARK + pattern;
}

/** What kind of engine channel a name is, and its plain name. */
export function channelKind(channel: string): { readonly kind: 'native' | 'raw' | 'pattern'; readonly name: string } {
  if (channel.startsWith(RAW_MARK)) return { kind: 'raw', name: channel.slice(RAW_MARK.length) };
  if (channel.startsWith(PATTERN_MARK)) return { kind: 'pattern', name: channel.slice(PATTERN_MARK.length) };
  return { kind: 'native', name: channel };
}

/** What a publisher hands to the engine. */
export interface PublishRequest {
  readonly data: Buffer;
  readonly info?: ClientInfo;
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * Keep history: the stream's length cap, how long it lives after its last publication and, when
   * given, how long its position (offset and epoch) does (else the engine's `historyMetaTtlMs`).
   */
  readonly history?: { readonly size: number; readonly ttlMs: number; readonly metaTtlMs?: number };
  /** A publish with a key seen within the idempotency window is not published again. */
  readonly idempotencyKey?: string;
  /** Mark the publication for delta compression (Publication.delta). */
  readonly delta?: boolean;
  /**
   * With history only: a publication whose version is not above the stream's last (in the same
   * version epoch, or in any when `epoch` is '') is suppressed: neither kept nor delivered, and the
   * result is the stream's top.
   */
  readonly version?: { readonly value: number; readonly epoch: string };
}

/** The result of a publish. */
export interface PublishResult {
  /** The stream position after the publication (`{offset: 0, epoch: ''}` without history). */
  readonly position: StreamPosition;
  /** True when an idempotency key (the position is the first one's) or a version (the stream's top) suppressed the publication. */
  readonly suppressed: boolean;
  /** Raw channels: how many subscribers received it (Redis: subscribed connections, i.e. nodes). */
  readonly receivers?: number;
}

/** What to read from a channel's history. */
export interface HistoryQuery {
  /** Publications after this offset (before it when `reverse`); absent: from the oldest (newest when reverse). */
  readonly since?: StreamPosition;
  /** How many publications at most: 0 only reads the position, -1 reads all. */
  readonly limit: number;
  readonly reverse?: boolean;
  /** How long a position created by this read lives (else the engine's `historyMetaTtlMs`). */
  readonly metaTtlMs?: number;
}

/** A history read: publications in stream order (reverse order when asked) and the stream's top. */
export interface HistoryResult {
  readonly publications: readonly Publication[];
  readonly position: StreamPosition;
}

/** Receives what the engine delivers to this node. */
export interface EngineHandler {
  /** A publication on a channel this node subscribed to, in offset order per channel; returns how many local subscribers got it. */
  onPublication(channel: string, pub: Publication, position: StreamPosition): number | void;
  /**
   * The engine may have missed publications of the given channels, or of every subscribed channel
   * when none are given (a pub/sub connection was lost). The engine no longer holds a subscription
   * for them. Subscribers must resynchronise: positioned ones recover, the others resubscribe.
   */
  onResync?(channels?: readonly string[]): void;
  /**
   * A control message from some node: sent to every node (API calls that act on connections of every
   * node), or to this one (`node`: the commands of an HTTP streaming session it holds).
   */
  onControl?(message: Buffer): void;
  /** This node's id: control messages sent to it (publishControl's `node`) reach onControl. */
  readonly node?: string;
  /** A client joined or left a channel this node subscribed to (never kept in history). */
  onJoinLeave?(channel: string, kind: JoinLeave, info: ClientInfo): void;
}

/** A join or leave event of a channel. */
export type JoinLeave = 'join' | 'leave';

/** How many clients, and how many distinct users among them, are present in a channel. */
export interface PresenceStats {
  readonly numClients: number;
  readonly numUsers: number;
}

/**
 * Presence: which clients are subscribed to a channel, on every node. Each entry lives for the TTL it
 * was added with; its node adds it again before then while the client stays, so the entries of a node
 * that died go away by themselves.
 */
export interface PresenceStore {
  /** Adds or refreshes clients present in a channel, each for `ttlMs`. */
  addPresence(channel: string, clients: readonly ClientInfo[], ttlMs: number): Promise<void>;
  /** Removes a client from a channel's presence. */
  removePresence(channel: string, clientId: string): Promise<void>;
  /** The clients present in a channel, by client id (expired entries left out). */
  presence(channel: string): Promise<Map<string, ClientInfo>>;
  /** Counts of the clients present in a channel and of their distinct users. */
  presenceStats(channel: string): Promise<PresenceStats>;
}

/** What a node announces about itself (the server API `info` method lists these). */
export type NodeInfo = Readonly<Record<string, unknown>> & { readonly uid: string };

/** The engine contract every implementation honours (see docs/architecture.md). */
export interface Engine extends PresenceStore {
  /** A short name for logs and `info`: `memory`, `redis`. */
  readonly name: string;
  /**
   * True when every publication the engine stores reaches every node subscribed to its channel (one
   * process: memory). Else (Redis pub/sub is at most once) positioned subscriptions are checked
   * against their streams' tops now and then (client.channel_position_check_delay).
   */
  readonly reliableDelivery: boolean;
  /** Starts the engine; from now on publications of subscribed channels reach `handler`. */
  start(handler: EngineHandler): Promise<void>;
  /** This node wants the channel's publications (callers reference-count; see the hub). */
  subscribe(channel: string): Promise<void>;
  /** This node no longer wants the channel's publications. */
  unsubscribe(channel: string): Promise<void>;
  /** Appends to history (when asked) and delivers to every node, atomically per channel. Raw
   *  channels: the payload goes out as is, to raw subscribers and matching patterns. */
  publish(channel: string, request: PublishRequest): Promise<PublishResult>;
  /** Reads a channel's history and its current top position. */
  history(channel: string, query: HistoryQuery): Promise<HistoryResult>;
  /** Drops a channel's publications, keeping its top offset and epoch. */
  removeHistory(channel: string): Promise<void>;
  /**
   * True when a Redis channel or key of this name is one the engine uses itself (Redis: its prefix
   * followed by `{` or `.`). Raw publishers, raw subscribers and plain values may not use it, and
   * pattern subscribers do not receive it: clients of other dialects can neither read nor forge a
   * Herald channel's traffic or the nodes' control messages.
   */
  reservedName(name: string): boolean;
  /** Reads a plain value (ws4redis persisted messages live under their channel's name). */
  getValue(key: string): Promise<Buffer | null>;
  /** Stores a plain value for `ttlMs` (0: no expiry). */
  setValue(key: string, value: Buffer, ttlMs: number): Promise<void>;
  /** Sends a client's join or leave to every node subscribed to the channel (not kept in history). */
  publishJoinLeave(channel: string, kind: JoinLeave, info: ClientInfo): Promise<void>;
  /** Sends a control message to every node, this one included, or, with `node`, to that node alone. */
  publishControl(message: Buffer, node?: string): Promise<void>;
  /** Announces this node as alive for `ttlMs`. */
  announce(info: NodeInfo, ttlMs: number): Promise<void>;
  /** Every live node's last announcement. */
  nodes(): Promise<NodeInfo[]>;
  /**
   * Resolves when the engine serves now (Redis: every master answers a PING, and the pub/sub
   * connection is up); rejects with the engine's temporary error otherwise. For readiness checks.
   */
  ping(): Promise<void>;
  /** Forgets a node's announcement at once (it is stopping), instead of when it expires. */
  withdraw(uid: string): Promise<void>;
  /** Stops the engine and releases its resources. */
  close(): Promise<void>;
}

/** Options shared by every engine. */
export interface EngineOptions {
  /** How long a stream's offset and epoch outlive its last publication. */
  readonly historyMetaTtlMs: number;
  /** How long an idempotency key is remembered. */
  readonly idempotentResultTtlMs: number;
}

const EPOCH_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** A new random epoch: 8 letters, as Centrifugo makes them. */
export function newEpoch(): string {
  let out = '';
  for (let i = 0; i < 8; i++) out += EPOCH_ALPHABET[Math.floor(Math.random() * EPOCH_ALPHABET.length)];
  return out;
}
