// The embedded engine: one node, everything in this process. Publication and history append happen
// in one synchronous step, so offsets are gap-free and delivery is in offset order.
import { HeraldError } from '../errors.js';
import {
  channelKind,
  newEpoch,
  type ClientInfo,
  type JoinLeave,
  type PresenceStats,
  type Engine,
  type EngineHandler,
  type EngineOptions,
  type HistoryQuery,
  type NodeInfo,
  type HistoryResult,
  type Publication,
  type PublishRequest,
  type PublishResult,
  type StreamPosition,
} from './engine.js';
import { compileGlob, type GlobMatcher } from './glob.js';

/** One channel's stream: the newest publications (at most the cap) plus the top position. */
class Stream {
  epoch = newEpoch();
  top = 0;
  /** The version of the last publication that carried one, and its version epoch. */
  version = 0;
  versionEpoch = '';
  /** Publications oldest first, from index `start` (trimmed lazily so appends stay O(1) amortised). */
  private pubs: Publication[] = [];
  private start = 0;
  /** When the publications expire (ms since epoch); the meta (top, epoch) outlives them. */
  pubsExpireAt = 0;
  metaExpireAt = 0;

  append(pub: Publication, cap: number): void {
    if (cap <= 0) return;
    this.pubs.push(pub);
    if (this.pubs.length - this.start > cap) this.start = this.pubs.length - cap;
    // Drop the trimmed head once it outweighs what is kept.
    if (this.start > cap) {
      this.pubs = this.pubs.slice(this.start);
      this.start = 0;
    }
  }

  /** Publications oldest first. */
  list(): Publication[] {
    return this.pubs.slice(this.start);
  }

  clear(): void {
    this.pubs = [];
    this.start = 0;
  }
}

/**
 * True when a publication's version is not above the stream's last one in the same version epoch
 * (or in any, when it names none), as Centrifugo orders versioned publications.
 */
function isStale(stream: Stream, version: PublishRequest['version']): boolean {
  if (!version || version.value <= 0) return false;
  return (version.epoch === '' || version.epoch === stream.versionEpoch) && version.value <= stream.version;
}

const SWEEP_INTERVAL_MS = 5_000;
/** Entries the sweep looks at in one turn. */
const SWEEP_SLICE = 10_000;
const NO_POSITION: StreamPosition = { offset: 0, epoch: '' };

/** The in-memory engine (the default). */
export class MemoryEngine implements Engine {
  readonly name = 'memory';
  readonly reliableDelivery = true;
  private handler: EngineHandler | undefined;
  private readonly streams = new Map<string, Stream>();
  private readonly idempotency = new Map<string, { position: StreamPosition; expireAt: number }>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** The walk under way (see sweep), and its next turn. */
  private sweeping: Generator<void, void, void> | undefined;
  private sweepNext: NodeJS.Immediate | undefined;
  private closed = false;
  private self: NodeInfo | undefined;
  private readonly patterns = new Map<string, GlobMatcher>();
  private readonly values = new Map<string, { value: Buffer; expireAt: number }>();
  /** Channel -> client id -> who, until when (ms since epoch). */
  private readonly present = new Map<string, Map<string, { info: ClientInfo; expireAt: number }>>();

  constructor(private readonly options: EngineOptions) {}

  async start(handler: EngineHandler): Promise<void> {
    this.handler = handler;
    this.sweepTimer = setInterval(() => this.sweeping === undefined && this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  // One process: every publication reaches the handler, and the hub keeps only what it has
  // subscribers for. Only pattern subscriptions need remembering, to match raw publications.
  async subscribe(channel: string): Promise<void> {
    this.assertOpen();
    const { kind, name } = channelKind(channel);
    if (kind === 'pattern') this.patterns.set(channel, compileGlob(name));
  }

  async unsubscribe(channel: string): Promise<void> {
    this.patterns.delete(channel);
  }

  reservedName(): boolean {
    return false; // raw channels and values have a namespace of their own here
  }

  async getValue(key: string): Promise<Buffer | null> {
    this.assertOpen();
    const v = this.values.get(key);
    if (!v) return null;
    if (v.expireAt > 0 && v.expireAt <= Date.now()) {
      this.values.delete(key);
      return null;
    }
    return v.value;
  }

  async setValue(key: string, value: Buffer, ttlMs: number): Promise<void> {
    this.assertOpen();
    this.values.set(key, { value, expireAt: ttlMs > 0 ? Date.now() + ttlMs : 0 });
  }

  async publish(channel: string, request: PublishRequest): Promise<PublishResult> {
    this.assertOpen();
    const now = Date.now();
    const { kind, name } = channelKind(channel);
    if (kind === 'raw') {
      // A plain channel: the payload as is, to its subscribers and to every matching pattern.
      const pub: Publication = { offset: 0, data: request.data, time: now };
      let receivers = Number(this.handler?.onPublication(channel, pub, NO_POSITION) ?? 0);
      for (const [pattern, re] of this.patterns) {
        if (re.test(name)) receivers += Number(this.handler?.onPublication(pattern, { ...pub, channel: name }, NO_POSITION) ?? 0);
      }
      return { position: NO_POSITION, suppressed: false, receivers };
    }
    if (kind === 'pattern') throw new HeraldError('HERALD_ERR_ENGINE', `cannot publish to a pattern: ${name}`);
    if (request.idempotencyKey) {
      const key = `${channel}\u0000${request.idempotencyKey}`;
      const seen = this.idempotency.get(key);
      if (seen && seen.expireAt > now) return { position: seen.position, suppressed: true };
    }
    let position: StreamPosition = { offset: 0, epoch: '' };
    let pub: Publication;
    if (request.history && request.history.size > 0) {
      const stream = this.liveStream(channel, now, true)!;
      if (isStale(stream, request.version)) return { position: { offset: stream.top, epoch: stream.epoch }, suppressed: true };
      if (request.version) {
        stream.version = request.version.value;
        stream.versionEpoch = request.version.epoch;
      }
      stream.top += 1;
      pub = { offset: stream.top, data: request.data, info: request.info, tags: request.tags, time: now, delta: request.delta };
      stream.append(pub, request.history.size);
      stream.pubsExpireAt = now + request.history.ttlMs;
      stream.metaExpireAt = now + Math.max(request.history.metaTtlMs ?? this.options.historyMetaTtlMs, request.history.ttlMs);
      position = { offset: stream.top, epoch: stream.epoch };
    } else {
      pub = { offset: 0, data: request.data, info: request.info, tags: request.tags, time: now, delta: request.delta };
    }
    if (request.idempotencyKey) {
      this.idempotency.set(`${channel}\u0000${request.idempotencyKey}`, {
        position,
        expireAt: now + this.options.idempotentResultTtlMs,
      });
    }
    this.handler?.onPublication(channel, pub, position);
    return { position, suppressed: false };
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    this.assertOpen();
    // Reading creates the stream's meta when missing, so the epoch a reader sees is the one later
    // publications carry (a subscriber positioned on an empty channel stays in step).
    const stream = this.liveStream(channel, Date.now(), true, query.metaTtlMs)!;
    const position = { offset: stream.top, epoch: stream.epoch };
    if (query.limit === 0) return { publications: [], position };
    let pubs = stream.list();
    if (query.reverse) {
      pubs.reverse();
      if (query.since) pubs = pubs.filter((p) => p.offset < query.since!.offset);
    } else if (query.since) {
      pubs = pubs.filter((p) => p.offset > query.since!.offset);
    }
    if (query.limit > 0 && pubs.length > query.limit) pubs = pubs.slice(0, query.limit);
    return { publications: pubs, position };
  }

  async removeHistory(channel: string): Promise<void> {
    this.assertOpen();
    this.streams.get(channel)?.clear();
  }

  async publishJoinLeave(channel: string, kind: JoinLeave, info: ClientInfo): Promise<void> {
    this.assertOpen();
    this.handler?.onJoinLeave?.(channel, kind, info);
  }

  async addPresence(channel: string, clients: readonly ClientInfo[], ttlMs: number): Promise<void> {
    this.assertOpen();
    let entries = this.present.get(channel);
    if (!entries) this.present.set(channel, (entries = new Map()));
    const expireAt = Date.now() + ttlMs;
    for (const info of clients) entries.set(info.client, { info, expireAt });
  }

  async removePresence(channel: string, clientId: string): Promise<void> {
    this.assertOpen();
    const entries = this.present.get(channel);
    if (!entries) return;
    entries.delete(clientId);
    if (entries.size === 0) this.present.delete(channel);
  }

  async presence(channel: string): Promise<Map<string, ClientInfo>> {
    this.assertOpen();
    const out = new Map<string, ClientInfo>();
    const now = Date.now();
    for (const [id, e] of this.present.get(channel) ?? []) if (e.expireAt > now) out.set(id, e.info);
    return out;
  }

  async presenceStats(channel: string): Promise<PresenceStats> {
    // Distinct user ids, anonymous clients counting as one: as herald_presence_stats counts on Redis.
    const users = new Set<string>();
    const present = await this.presence(channel);
    for (const info of present.values()) users.add(info.user);
    return { numClients: present.size, numUsers: users.size };
  }

  async publishControl(message: Buffer, node?: string): Promise<void> {
    this.assertOpen();
    // One node: a message for another reaches nobody.
    if (node !== undefined && node !== this.handler?.node) return;
    // Asynchronous like a real broadcast, so the caller's state is settled when it arrives.
    setImmediate(() => this.handler?.onControl?.(message));
  }

  async announce(info: NodeInfo): Promise<void> {
    this.self = info;
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async nodes(): Promise<NodeInfo[]> {
    return this.self ? [this.self] : [];
  }

  async withdraw(uid: string): Promise<void> {
    if (this.self?.uid === uid) this.self = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.sweepNext) clearImmediate(this.sweepNext);
    this.sweeping = undefined;
    this.streams.clear();
    this.idempotency.clear();
    this.values.clear();
    this.present.clear();
  }

  /** The channel's stream with expired parts dropped; created when `create` and missing. */
  private liveStream(channel: string, now: number, create: boolean, metaTtlMs = this.options.historyMetaTtlMs): Stream | undefined {
    let stream = this.streams.get(channel);
    if (stream && stream.metaExpireAt <= now) {
      // The whole stream is gone: a new one starts with a new epoch, so old positions cannot match.
      this.streams.delete(channel);
      stream = undefined;
    }
    if (stream && stream.pubsExpireAt <= now) stream.clear();
    if (!stream && create) {
      stream = new Stream();
      stream.metaExpireAt = now + metaTtlMs;
      this.streams.set(channel, stream);
    }
    return stream;
  }

  /**
   * Frees what expired (reads already treat it as gone), SWEEP_SLICE entries a turn: a node holding
   * a million channels' positions is not stopped for the whole walk (about a second).
   */
  private sweep(): void {
    if (this.closed) return;
    this.sweepNext = undefined;
    this.sweeping ??= this.expired(Date.now());
    for (let i = 0; i < SWEEP_SLICE; i++) {
      if (this.sweeping.next().done) {
        this.sweeping = undefined;
        return;
      }
    }
    this.sweepNext = setImmediate(() => this.sweep());
  }

  /** One walk over everything that expires, a step per entry. */
  private *expired(now: number): Generator<void, void, void> {
    for (const [channel, stream] of this.streams) {
      if (stream.metaExpireAt <= now) this.streams.delete(channel);
      else if (stream.pubsExpireAt <= now) stream.clear();
      yield;
    }
    for (const [key, seen] of this.idempotency) {
      if (seen.expireAt <= now) this.idempotency.delete(key);
      yield;
    }
    for (const [key, v] of this.values) {
      if (v.expireAt > 0 && v.expireAt <= now) this.values.delete(key);
      yield;
    }
    for (const [channel, entries] of this.present) {
      for (const [id, e] of entries) if (e.expireAt <= now) entries.delete(id);
      if (entries.size === 0) this.present.delete(channel);
      yield;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new HeraldError('HERALD_ERR_ENGINE_CLOSED', 'the engine is closed');
  }
}
