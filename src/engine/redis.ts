// The Redis engine: many Herald nodes share one Redis or a Redis Cluster. A fixed few connections per
// node (commands, pub/sub), one Redis subscription per channel per node (the hub counts local
// subscribers), publish-with-history in one server-side function so offsets are gap-free across nodes,
// and sharded pub/sub (SSUBSCRIBE/SPUBLISH) in cluster mode so the load spreads over the shards.
import { Cluster, type Redis } from 'ioredis';
import type { Logger } from 'pino';
import { within } from '../server/bounded.js';
import { HeraldError } from '../errors.js';
import {
  channelKind,
  newEpoch,
  type ClientInfo,
  type Engine,
  type EngineHandler,
  type EngineOptions,
  type HistoryQuery,
  type HistoryResult,
  type JoinLeave,
  type NodeInfo,
  type PresenceStats,
  type Publication,
  type PublishRequest,
  type PublishResult,
} from './engine.js';
import { decodeEnvelope, encodeEnvelope, encodeJoinLeave, headerExtra } from './envelope.js';
import { connectionsVisible, sameStamp, servingConnection, slotOf, topologyStamp } from './redis-cluster-conns.js';
import { throttledWarn } from './log-throttle.js';
import { FunctionLibrary } from './redis-functions.js';
import { RedisPresence } from './redis-presence.js';
import { createClients, redactUrl, runRedis, TickWrites, type RedisWhere } from './redis-clients.js';
import { NoAnswer, SILENT_MS, withTimeout, type Mode, type Pending, type Target } from './redis-targets.js';
import { channelNames, controlChannel, idempotencyKey, isReservedName } from './redis-names.js';

/** Options of the Redis engine. */
export interface RedisEngineOptions extends EngineOptions, RedisWhere {
  /** Prefix of every key and channel Herald uses. */
  readonly prefix: string;
  readonly log: Logger;
}

type Client = Redis | Cluster;

const NO_POSITION = { offset: 0, epoch: '' };
/** How often the cluster clients re-read the slot table (CLUSTER SLOTS). */
const SLOTS_REFRESH_MS = 2_000;

/** The Redis / Redis Cluster engine. */
export class RedisEngine implements Engine {
  readonly name = 'redis';
  readonly reliableDelivery = false;
  private handler: EngineHandler | undefined;
  private readonly cmd: Client;
  private readonly sub: Client;
  private readonly clusterMode: boolean;
  private readonly sharded: boolean;
  /** The Redis subscriptions this node wants, by mode and by Redis channel or pattern (see `where`). */
  private readonly wanted: Readonly<Record<Mode, Map<string, Target>>> = { shard: new Map(), plain: new Map(), pattern: new Map() };
  private heldCheckScheduled = false;
  /** The cluster topology the held subscriptions were last checked against (see topologyStamp). */
  private checkedStamp: unknown[] | undefined;
  private pendingSubscribe = new Map<Target, Pending>();
  /**
   * Pub/sub connections (the Redis client, or a cluster's subscriber connection) that left an
   * (UN)SUBSCRIBE unanswered past its timeout, with when: not answering, for SILENT_MS or until they
   * answer it (see flushSubscribes).
   */
  private silent = new WeakMap<object, number>();
  /** The plain Redis channel nodes send control messages on. */
  private readonly controlName: string;
  /** The one this node alone is sent control messages on (set at start, when the handler names the node). */
  private nodeControlName: string | undefined;
  private flushScheduled = false;
  private readonly pendingUnsubscribe = new Set<Target>();
  private unsubscribeScheduled = false;
  private unsubscribeFlushed: Promise<void> = Promise.resolve();
  private readonly functions: FunctionLibrary;
  /** Gathers the commands sent together into one write per connection. */
  private readonly tickWrites: TickWrites;
  /** Runs a command on the command connection, gathered with those sent together (see runRedis for its errors). */
  private readonly run = <T>(op: () => Promise<T>): Promise<T> => {
    this.tickWrites.hold();
    return runRedis(op);
  };
  private readonly presenceStore: RedisPresence;
  private subscriberWasReady = false;
  private closed = false;
  private slotsRefreshTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RedisEngineOptions) {
    this.clusterMode = !!options.cluster && options.cluster.length > 0;
    this.sharded = this.clusterMode && options.shardedPubsub;
    this.controlName = controlChannel(options.prefix);
    ({ cmd: this.cmd, sub: this.sub } = createClients(options));
    this.tickWrites = new TickWrites(this.cmd);
    this.functions = new FunctionLibrary(this.cmd, this.run);
    this.presenceStore = new RedisPresence(options.prefix, this.functions, this.cmd);
  }

  async start(handler: EngineHandler): Promise<void> {
    this.handler = handler;
    if (handler.node !== undefined) this.nodeControlName = controlChannel(this.options.prefix, handler.node);
    const where = this.clusterMode ? `cluster ${this.options.cluster!.join(',')}` : redactUrl(this.options.url!);
    const warn = throttledWarn(this.options.log, 5000);
    for (const [role, client] of [['commands', this.cmd], ['pub/sub', this.sub]] as const) {
      client.on('error', (err: Error) => warn(`${role} ${err.message}`, { err: err.message, role }, `redis ${role} connection error (${where})`));
    }
    this.sub.on('messageBuffer', (ch: Buffer, msg: Buffer) => this.onMessage('plain', ch.toString(), msg));
    this.sub.on('smessageBuffer', (ch: Buffer, msg: Buffer) => this.onMessage('shard', ch.toString(), msg));
    this.sub.on('pmessageBuffer', (pattern: Buffer, ch: Buffer, msg: Buffer) => this.onMessage('pattern', pattern.toString(), msg, ch.toString()));
    this.sub.on('ready', () => this.onSubscriberReady());
    // Install the function library whenever the command connection (re)connects, so programs that
    // publish with FCALL herald_publish find it as soon as Herald runs, and again after a restart.
    this.cmd.on('ready', () => {
      this.functions.reset();
      this.functions.ensure().catch((err: Error) => this.options.log.warn({ err: err.message }, 'redis function library not installed yet'));
    });
    this.sub.on('close', () => this.onSubscriberLost());
    if (this.sub instanceof Cluster) {
      // ioredis replaces pub/sub connections on failovers and topology changes and resubscribes on
      // the new ones itself; publications in between are lost. After each such event the channels
      // whose connection is not the one serving them any more resynchronise.
      if (connectionsVisible(this.sub, this.sharded)) {
        for (const event of ['-node', '+node', '-subscriber', '+subscriber', 'subscribersReady', 'refresh']) this.sub.on(event, () => this.scheduleHeldCheck());
      } else {
        this.options.log.warn('cannot tell which redis cluster connection serves a channel: every channel resyncs when a node is lost');
        this.sub.on('-node', () => this.resyncHeld(() => true, 'a redis cluster node was lost'));
      }
    }
    if (this.cmd instanceof Cluster && this.sub instanceof Cluster) {
      // Re-reads the slot table every 2 s so topology changes show up without waiting for a MOVED.
      // Not ioredis's `slotsRefreshInterval`: its loop re-arms its timer when a refresh still in
      // flight at disconnect() ends, then refreshes an empty pool every 2 s for good.
      const clusters = [this.cmd, this.sub];
      this.slotsRefreshTimer = setInterval(() => {
        for (const c of clusters) if (c.status === 'ready') c.refreshSlotsCache();
      }, SLOTS_REFRESH_MS);
      this.slotsRefreshTimer.unref();
    }
    // Not awaited: a Redis that is down at start is retried in the background; until it answers,
    // publishes and subscribes fail with a clear temporary error and the node keeps serving.
    this.cmd.connect().catch((err: Error) => this.options.log.error({ err: err.message }, `redis unreachable (${where}); retrying`));
    this.sub.connect().catch(() => undefined);
    await within(Promise.all([this.whenReady(this.cmd), this.whenReady(this.sub)]), 3_000);
    if (this.cmd.status === 'ready') await this.functions.ensure().catch(() => undefined);
    if (this.cmd.status !== 'ready' || this.sub.status !== 'ready') {
      this.options.log.error(`redis not ready after 3 s (${where}); serving anyway and retrying in the background`);
    }
  }

  async subscribe(channel: string): Promise<void> {
    this.assertOpen();
    const { kind, mode, name } = this.where(channel);
    if (kind === 'raw') this.refuseReserved(name);
    const wanted = this.wanted[mode];
    let target = wanted.get(name);
    if (!target) {
      target = { channel, kind, mode, name, slot: mode === 'shard' ? slotOf(name) : undefined, held: false, heldOn: undefined };
      wanted.set(name, target);
    }
    return new Promise<void>((resolve, reject) => {
      let pending = this.pendingSubscribe.get(target);
      if (!pending) this.pendingSubscribe.set(target, (pending = { target, waiters: [] }));
      pending.waiters.push({ resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushSubscribes());
      }
    });
  }

  async unsubscribe(channel: string): Promise<void> {
    const { mode, name } = this.where(channel);
    const target = this.wanted[mode].get(name);
    if (!target) return;
    this.wanted[mode].delete(name);
    target.held = false;
    await this.unsubscribeLater(target);
  }

  /** Queues an UNSUBSCRIBE for a target no longer wanted; resolves once it is sent and answered. */
  private unsubscribeLater(target: Target): Promise<void> {
    if (this.closed || this.sub.status !== 'ready') return Promise.resolve(); // resubscription after a reconnect skips it
    // Batched like subscribes: channels left in one event-loop turn go in one UNSUBSCRIBE.
    this.pendingUnsubscribe.add(target);
    if (!this.unsubscribeScheduled) {
      this.unsubscribeScheduled = true;
      this.unsubscribeFlushed = new Promise((resolve) => setImmediate(() => this.flushUnsubscribes().finally(resolve)));
    }
    return this.unsubscribeFlushed;
  }

  private async flushUnsubscribes(): Promise<void> {
    this.unsubscribeScheduled = false;
    // A channel wanted again meanwhile stays subscribed; if that new subscribe fails, it is taken back then.
    const targets: Target[] = [];
    for (const t of this.pendingUnsubscribe) {
      const again = this.wanted[t.mode].get(t.name);
      if (!again) targets.push(t);
      else if (again !== t) again.owed = true;
    }
    this.pendingUnsubscribe.clear();
    if (targets.length === 0 || this.sub.status !== 'ready') return;
    const of = (mode: Mode) => targets.filter((t) => t.mode === mode);
    // Each call with the connection it went through, and whether it was answered.
    const calls: Array<{ on: object | undefined; answer: Promise<unknown>; answered: boolean }> = [];
    const call = (first: Target, answer: Promise<unknown>) => {
      const c = { on: this.pubsubConnection(first), answer, answered: false };
      answer.then(
        () => (c.answered = true),
        () => (c.answered = true),
      );
      calls.push(c);
    };
    try {
      for (const t of of('shard')) call(t, (this.sub as Cluster).sunsubscribe(t.name));
      const plain = of('plain');
      if (plain.length) call(plain[0]!, this.sub.unsubscribe(...plain.map((t) => t.name)));
      const pattern = of('pattern');
      if (pattern.length) call(pattern[0]!, this.sub.punsubscribe(...pattern.map((t) => t.name)));
      await withTimeout(Promise.all(calls.map((c) => c.answer)));
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message, channels: targets.length }, 'redis unsubscribe failed');
      // A connection that left an UNSUBSCRIBE unanswered is not answering: subscribes that would go
      // through it fail at once for a while (see flushSubscribes), not after the timeout each.
      if (err instanceof NoAnswer) for (const c of calls) if (c.on && !c.answered) this.noteSilent(c.on, c.answer);
    }
    // A channel wanted again while its UNSUBSCRIBE was on its way may have been subscribed before
    // Redis ran it: in a cluster, ioredis queues commands per connection, and after a failover a
    // resubscription can overtake an UNSUBSCRIBE queued earlier. Subscribing again now, after it,
    // leaves Redis holding what is wanted (subscribing twice is harmless).
    for (const t of targets) {
      const again = this.wanted[t.mode].get(t.name);
      if (!again || this.closed) continue;
      withTimeout(this.sendSubscribe(t.mode, [t.name])).catch(() => {
        // Not subscribed after all: its subscribers resynchronise and subscribe again.
        if (this.wanted[again.mode].get(again.name) !== again) return;
        this.wanted[again.mode].delete(again.name);
        again.held = false;
        this.handler?.onResync?.([again.channel]);
      });
    }
  }

  reservedName(name: string): boolean {
    return isReservedName(this.options.prefix, name);
  }

  private refuseReserved(name: string): void {
    if (this.reservedName(name)) throw new HeraldError('HERALD_ERR_RESERVED', `${name} is one of Herald's own Redis names (prefix "${this.options.prefix}")`);
  }

  async getValue(key: string): Promise<Buffer | null> {
    this.assertOpen();
    this.refuseReserved(key);
    return this.run(() => this.cmd.getBuffer(key));
  }

  async ping(): Promise<void> {
    this.assertOpen();
    const targets: Redis[] = this.cmd instanceof Cluster ? this.cmd.nodes('master') : [this.cmd];
    if (targets.length === 0) throw new HeraldError('HERALD_ERR_ENGINE', 'redis unavailable: no master known');
    await Promise.all(targets.map((node) => this.run(() => node.ping())));
    if (this.sub.status !== 'ready') throw new HeraldError('HERALD_ERR_ENGINE', `redis unavailable: the pub/sub connection is ${this.sub.status}`);
  }

  async setValue(key: string, value: Buffer, ttlMs: number): Promise<void> {
    this.assertOpen();
    this.refuseReserved(key);
    await this.run(() => (ttlMs > 0 ? this.cmd.set(key, value, 'PX', ttlMs) : this.cmd.set(key, value)));
  }

  async publish(channel: string, request: PublishRequest): Promise<PublishResult> {
    this.assertOpen();
    const { kind, name } = channelKind(channel);
    if (kind === 'raw') {
      // A plain Redis channel: the payload as is, as any Redis client would PUBLISH it.
      this.refuseReserved(name);
      const receivers = await this.run(() => this.plainPublisher().publish(name, request.data));
      return { position: { offset: 0, epoch: '' }, suppressed: false, receivers };
    }
    if (kind === 'pattern') throw new HeraldError('HERALD_ERR_ENGINE', `cannot publish to a pattern: ${name}`);
    const names = channelNames(this.options.prefix, channel);
    const extra = headerExtra(request.info, request.tags, request.delta);
    const time = Date.now();
    const size = request.history?.size ?? 0;
    if (size === 0 && !request.idempotencyKey) {
      // No history: one plain PUBLISH, no server-side function.
      await this.run(() => this.cmd.call(this.sharded ? 'spublish' : 'publish', names.pubsub, encodeEnvelope(0, '', time, extra, request.data)));
      return { position: { offset: 0, epoch: '' }, suppressed: false };
    }
    const keys = [names.history, names.meta];
    if (request.idempotencyKey) keys.push(idempotencyKey(this.options.prefix, channel, request.idempotencyKey));
    const reply = (await this.functions.call('herald_publish', keys, [
      names.pubsub,
      request.data,
      String(size),
      String(request.history?.ttlMs ?? 0),
      String(request.history?.metaTtlMs ?? this.options.historyMetaTtlMs),
      newEpoch(),
      extra,
      String(time),
      this.sharded ? 'spublish' : 'publish',
      String(this.options.idempotentResultTtlMs),
      ...(request.version && request.version.value > 0 && size > 0 ? [String(request.version.value), request.version.epoch] : []),
    ])) as [number, Buffer | string, number];
    return { position: { offset: Number(reply[0]), epoch: String(reply[1]) }, suppressed: Number(reply[2]) === 1 };
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    this.assertOpen();
    const names = channelNames(this.options.prefix, channel);
    const reply = (await this.functions.call('herald_history', [names.history, names.meta], [
      newEpoch(),
      String(query.metaTtlMs ?? this.options.historyMetaTtlMs),
      String(query.since ? query.since.offset : -1),
      String(query.limit),
      query.reverse ? '1' : '0',
    ])) as Array<number | Buffer>;
    const position = { offset: Number(reply[0]), epoch: String(reply[1]) };
    let publications: Publication[] = [];
    for (let i = 2; i < reply.length; i++) {
      const decoded = decodeEnvelope(reply[i] as Buffer);
      if (decoded && decoded.joinLeave === undefined) publications.push(decoded.pub);
    }
    // The list's offsets are contiguous; filtering again keeps the answer right even if it is not.
    if (query.since) {
      const since = query.since.offset;
      publications = publications.filter((p) => (query.reverse ? p.offset < since : p.offset > since));
    }
    if (query.reverse) publications.reverse();
    return { publications, position };
  }

  async removeHistory(channel: string): Promise<void> {
    this.assertOpen();
    await this.run(() => this.cmd.del(channelNames(this.options.prefix, channel).history));
  }

  async publishJoinLeave(channel: string, kind: JoinLeave, info: ClientInfo): Promise<void> {
    this.assertOpen();
    const pubsub = channelNames(this.options.prefix, channel).pubsub;
    await this.run(() => this.cmd.call(this.sharded ? 'spublish' : 'publish', pubsub, encodeJoinLeave(kind, info)));
  }

  addPresence(channel: string, clients: readonly ClientInfo[], ttlMs: number): Promise<void> {
    this.assertOpen();
    return this.presenceStore.addPresence(channel, clients, ttlMs);
  }

  removePresence(channel: string, clientId: string): Promise<void> {
    this.assertOpen();
    return this.presenceStore.removePresence(channel, clientId);
  }

  presence(channel: string): Promise<Map<string, ClientInfo>> {
    this.assertOpen();
    return this.presenceStore.presence(channel);
  }

  presenceStats(channel: string): Promise<PresenceStats> {
    this.assertOpen();
    return this.presenceStore.presenceStats(channel);
  }

  async publishControl(message: Buffer, node?: string): Promise<void> {
    this.assertOpen();
    await this.run(() => this.cmd.publish(controlChannel(this.options.prefix, node), message));
  }

  announce(info: NodeInfo, ttlMs: number): Promise<void> {
    // With each announcement (every few seconds), the function library is checked too (recheck).
    this.functions.recheck().catch(() => undefined);
    return this.presenceStore.announce(info, ttlMs);
  }

  nodes(): Promise<NodeInfo[]> {
    return this.presenceStore.nodes();
  }

  withdraw(uid: string): Promise<void> {
    return this.presenceStore.withdraw(uid);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.slotsRefreshTimer);
    for (const p of this.pendingSubscribe.values()) for (const w of p.waiters) w.reject(new HeraldError('HERALD_ERR_ENGINE_CLOSED', 'the engine is closed'));
    this.pendingSubscribe.clear();
    // QUIT politely, but never wait long: a dead cluster node would keep it pending forever.
    await within(Promise.allSettled([this.cmd.quit(), this.sub.quit()]), 1_000);
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  /**
   * The connection plain PUBLISHes go through. In a cluster any node would do (plain pub/sub is
   * broadcast to every node), but one node for all of them keeps each channel's messages in order.
   */
  private plainPublisher(): Redis | Cluster {
    if (!(this.cmd instanceof Cluster)) return this.cmd;
    const masters = this.cmd.nodes('master').filter((n) => n.status === 'ready');
    if (masters.length === 0) return this.cmd;
    masters.sort((a, b) => `${a.options.host}:${a.options.port}`.localeCompare(`${b.options.host}:${b.options.port}`));
    return masters[0]!;
  }

  /** Where a Herald engine channel lives in Redis (`name`), and how it is subscribed to (`mode`). */
  private where(channel: string): Pick<Target, 'kind' | 'mode' | 'name'> {
    const { kind, name } = channelKind(channel);
    if (kind === 'raw') return { kind, mode: 'plain', name };
    if (kind === 'pattern') return { kind, mode: 'pattern', name };
    return { kind, mode: this.sharded ? 'shard' : 'plain', name: channelNames(this.options.prefix, channel).pubsub };
  }

  /** A message from Redis: `name` is the channel (or, for `pattern`, the pattern) it came on. */
  private onMessage(mode: Mode, name: string, message: Buffer, from?: string): void {
    if (mode === 'plain' && (name === this.controlName || name === this.nodeControlName)) {
      this.handler?.onControl?.(message);
      return;
    }
    const target = this.wanted[mode].get(name);
    if (!target) return;
    if (target.kind !== 'native') {
      if (from !== undefined && this.reservedName(from)) return; // a pattern matching Herald's own traffic
      const pub = from === undefined ? { offset: 0, data: message } : { offset: 0, data: message, channel: from };
      this.handler?.onPublication(target.channel, pub, NO_POSITION);
      return;
    }
    // A message without an envelope is a plain PUBLISH from any Redis client: the payload as is,
    // outside the channel's stream (no offset, so no history and no recovery for it).
    const decoded = decodeEnvelope(message) ?? { pub: { offset: 0, data: message }, position: NO_POSITION };
    if (decoded.joinLeave !== undefined) this.handler?.onJoinLeave?.(target.channel, decoded.joinLeave, decoded.info);
    else this.handler?.onPublication(target.channel, decoded.pub, decoded.position);
  }

  private flushSubscribes(): void {
    this.flushScheduled = false;
    const batch = [...this.pendingSubscribe.values()];
    this.pendingSubscribe = new Map();
    if (batch.length === 0) return;
    // The cluster connection each subscribe went to (ioredis picks it when the command is sent).
    const sentOn = new Map<Target, Redis | undefined>();
    const noteConnection = (items: Pending[]) => {
      if (!(this.sub instanceof Cluster)) return;
      for (const item of items) sentOn.set(item.target, servingConnection(this.sub, item.target.slot));
    };
    const settle = (items: Pending[], err?: Error, sent = true) => {
      for (const { target, waiters } of items) {
        // Only while still wanted: a channel left meanwhile (and maybe wanted again, as a new target) is not this one.
        const current = this.wanted[target.mode].get(target.name) === target;
        if (err && current) {
          this.wanted[target.mode].delete(target.name);
          // Redis may hold the channel anyway: a timed-out SUBSCRIBE that it runs later, or a repeated
          // one for a channel it already held. Unsubscribing (sent after it, so run after it) leaves
          // no subscription without a record here, whose messages Redis would send for nothing.
          // One never sent has nothing to take back, unless Redis held it already or may still run
          // an earlier SUBSCRIBE of it (`owed`: a stalled Redis runs what it was sent once it resumes).
          if (sent || target.held || target.owed) void this.unsubscribeLater(target);
        } else if (!err && current) this.hold(target, sentOn.get(target));
        for (const w of waiters) (err ? w.reject(err) : w.resolve());
      }
    };
    const fail = (items: Pending[], err: unknown, sent = true) =>
      settle(items, new HeraldError('HERALD_ERR_ENGINE', `redis subscribe failed: ${(err as Error).message}`), sent);
    if (this.sub.status !== 'ready') return fail(batch, new Error('redis pub/sub connection is not ready'), false);
    const run = (items: Pending[], op: () => Promise<unknown>) => {
      if (!items.length) return;
      // The items of one call go through one connection. One that left an (UN)SUBSCRIBE unanswered
      // lately is not sent more: they fail at once (error 100, the client retries with its backoff)
      // rather than each waiting out the timeout behind a stopped Redis or cluster master.
      const before = this.pubsubConnection(items[0]!.target);
      const since = before && this.silent.get(before);
      if (since !== undefined && Date.now() - since < SILENT_MS) return fail(items, new Error('redis is not answering'), false);
      const answer = op();
      const sent = withTimeout(answer);
      noteConnection(items);
      sent.then(
        () => settle(items),
        (err) => {
          if (before && err instanceof NoAnswer) this.noteSilent(before, answer);
          fail(items, err);
        },
      );
    };
    const of = (mode: Mode) => batch.filter((p) => p.target.mode === mode);
    // SSUBSCRIBE takes channels of one slot at a time: one call per channel, sent together.
    for (const item of of('shard')) run([item], () => this.sendSubscribe('shard', [item.target.name]));
    for (const mode of ['plain', 'pattern'] as const) {
      const items = of(mode);
      run(items, () => this.sendSubscribe(mode, items.map((p) => p.target.name)));
    }
  }

  /**
   * The connection a target's subscribe goes through: the Redis client, or in a cluster the plain or
   * sharded subscriber connection serving it (undefined when ioredis does not show it).
   */
  private pubsubConnection(target: Target): object | undefined {
    return this.sub instanceof Cluster ? servingConnection(this.sub, target.slot) : this.sub;
  }

  /** A connection left an (UN)SUBSCRIBE unanswered past its timeout: not answering until it answers it (or for SILENT_MS). */
  private noteSilent(conn: object, answer: Promise<unknown>): void {
    const at = Date.now();
    this.silent.set(conn, at);
    answer.then(
      () => {
        if (this.silent.get(conn) === at) this.silent.delete(conn);
      },
      () => undefined,
    );
  }

  /** SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE (channels of one slot), as the mode says. */
  private sendSubscribe(mode: Mode, names: string[]): Promise<unknown> {
    if (mode === 'shard') return (this.sub as Cluster).ssubscribe(...names);
    return mode === 'plain' ? this.sub.subscribe(...names) : this.sub.psubscribe(...names);
  }

  private onSubscriberReady(): void {
    this.silent = new WeakMap(); // a new connection (a single Redis's client keeps its object across reconnects)
    const control = this.nodeControlName ? [this.controlName, this.nodeControlName] : [this.controlName];
    this.sub.subscribe(...control).catch((err: Error) => this.options.log.warn({ err: err.message }, 'redis control subscribe failed'));
    this.subscriberWasReady = true;
  }

  private onSubscriberLost(): void {
    if (!this.subscriberWasReady || this.closed) return;
    this.subscriberWasReady = false;
    this.options.log.warn('redis pub/sub connection lost: subscribers resynchronise (recover or resubscribe)');
    // Publications may be lost until the connection is back: every subscriber resubscribes, and
    // positioned ones recover from history (or learn recovered:false), so nothing is lost silently.
    for (const wanted of Object.values(this.wanted)) wanted.clear();
    this.handler?.onResync?.();
  }

  /**
   * Notes a confirmed subscription. In a cluster, one whose connection changed between sending and
   * confirming (a topology event already checked without it) gets the next check's full pass.
   */
  private hold(target: Target, on: Redis | undefined): void {
    target.held = true;
    target.heldOn = on;
    if (!(this.sub instanceof Cluster) || (on && on === servingConnection(this.sub, target.slot) && on.status === 'ready')) return;
    this.checkedStamp = undefined;
    this.scheduleHeldCheck();
  }

  /** Checks the held subscriptions once the current burst of cluster topology events is over. */
  private scheduleHeldCheck(): void {
    if (this.heldCheckScheduled) return;
    this.heldCheckScheduled = true;
    setImmediate(() => {
      this.heldCheckScheduled = false;
      const cluster = this.sub as Cluster;
      const stamp = topologyStamp(cluster);
      if (sameStamp(this.checkedStamp, stamp)) return;
      this.checkedStamp = stamp;
      this.resyncHeld((t) => {
        const on = t.heldOn;
        return !on || on !== servingConnection(cluster, t.slot) || on.status !== 'ready';
      }, 'a redis cluster pub/sub connection was lost or replaced');
    });
  }

  /** Drops the held subscriptions that `lost` picks and tells their subscribers to resynchronise. */
  private resyncHeld(lost: (t: Target) => boolean, why: string): void {
    if (this.closed) return;
    const dropped: Target[] = [];
    for (const wanted of Object.values(this.wanted)) {
      for (const [name, target] of wanted) {
        if (!target.held || !lost(target)) continue;
        target.held = false;
        wanted.delete(name);
        dropped.push(target);
      }
    }
    if (dropped.length === 0) return;
    this.options.log.warn({ channels: dropped.length }, `${why}: its channels resynchronise (recover or resubscribe)`);
    this.handler?.onResync?.(dropped.map((t) => t.channel));
    // ioredis subscribes a cluster's sharded channels again on their new master by itself: one that
    // no subscriber wants again (it left meanwhile) would stay subscribed there for good.
    for (const target of dropped) void this.unsubscribeLater(target);
  }

  private whenReady(client: Client): Promise<void> {
    if (client.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => client.once('ready', () => resolve()));
  }

  private assertOpen(): void {
    if (this.closed) throw new HeraldError('HERALD_ERR_ENGINE_CLOSED', 'the engine is closed');
  }
}
