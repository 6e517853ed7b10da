// One native (Centrifugo protocol) connection: its state machine (new -> connected -> closed),
// commands of a frame handled strictly in order, pings, connection expiry, and delivery of
// publications from the hub through a bounded outbox.
import { randomUUID } from 'node:crypto';
import { logFailure } from '../../errors.js';
import type { Publication, StreamPosition } from '../../engine/engine.js';
import { OutboxBase } from '../../hub/outbox.js';
import { closeOrCut } from '../../server/bounded.js';
import { Inbound } from '../../server/inbound.js';
import { DeadlineObject, NOT_SCHEDULED, timers, type Deadline } from '../../hub/timer-wheel.js';
import {
  commandMethod,
  decodeFrame,
  encodeError,
  encodePush,
  encodeResult,
  NON_JSON_PUSH,
  PING,
  RawJson,
  rawJson,
  SEPARATOR,
  ttlSeconds,
  type Method,
} from './codec.js';
import { Disconnects, DisconnectError, Errors, ReplyError, Unsubscribes, type Disconnect } from './codes.js';
import type { NativeContext, ResyncReason } from './context.js';
import { asObject, channelOrBadRequest, num, str } from './fields.js';
import { handleSubRefresh, handleSubscribe, handleUnsubscribe, apiSubscribe, connectSubscription, warmFrame, type ChannelSub } from './channel-ops.js';
import { handleHistory, handlePublish } from './publish-history.js';
import { connectIdentity, endOtherConnections, handleRefresh, refreshConnectionByProxy } from './identity.js';
import { handlePresence, leaveChannel } from './presence.js';
import { abandonProxyCalls, handleRpc } from './proxy.js';
import { Subscriptions } from './subscriptions.js';
import { matchesTags } from './tags-filter.js';
import type { NativeSocket, TransportOptions } from './transport.js';

type Command = Record<string, unknown> & { id?: unknown };

/**
 * A native protocol session over one connection (a WebSocket, or HTTP streaming or SSE with
 * `/emulation`). It is its connection's outbox (the hub's deliveries go through one object per
 * connection) and its own ping deadline on the timer wheel. The outbox's `push` queues bytes as they
 * are: the session's own code goes through `write` and `deliver`. Its transport calls `onFrame`,
 * `onPong` and `cleanup`.
 */
export class NativeSession extends OutboxBase<NativeSocket> implements Deadline {
  wheelAt = NOT_SCHEDULED;
  wheelPrev: Deadline | undefined = undefined;
  wheelNext: Deadline | undefined = undefined;
  readonly id = randomUUID();
  user = '';
  connInfo: string | undefined;
  /** Connection meta (raw JSON, from the token or the connect proxy): for the proxies that include it. */
  meta: string | undefined = undefined;
  /** When the connection expires (ms since epoch); 0 = never. */
  expireAt = 0;
  state: 'new' | 'connected' | 'unusable' | 'closed' = 'new';
  readonly subs = new Subscriptions();

  /** True once the connection is closed (a getter, so checks after an await are not narrowed away). */
  get closed(): boolean {
    return this.state === 'closed';
  }

  /** True when a failed connect made the connection unusable. */
  get unusable(): boolean {
    return this.state === 'unusable';
  }

  private chain: Promise<void> = SETTLED;
  private inbound: Inbound | undefined;
  private expireTimer: NodeJS.Timeout | undefined;
  private awaitingPong = false;
  /**
   * The wheel tick from which the next ping may go early, together with other output (see
   * pingWithOutput); NO_EARLY_PING while none is scheduled (a small integer either way, kept in place).
   */
  private earlyPingTick = NO_EARLY_PING;
  /** `cf_ws_frame_ping_pong`: WebSocket ping frames instead of protocol pings. */
  private readonly framePingPong: boolean;
  /** HTTP streaming or SSE: the id `/emulation` requests name this session by. */
  readonly emulatedSession: string | undefined;
  /** `websocket`, `http_stream` or `sse`. */
  readonly transport: string;
  /** Headers of the client's request (and connect command) that the proxies pass on; undefined when no proxy is on. */
  proxyHeaders: Record<string, string> | undefined;
  /** The user a gateway named in the client's request (`client.user_id_http_header`); undefined when none. */
  readonly headerUser: string | undefined;

  // The session is its outbox and its own ping deadline, and one small object, made only while it is
  // scheduled, is its other deadline: at tens of thousands of connections, every object per
  // connection counts (memory, and the garbage collector's marking time).
  /**
   * The stale-handshake deadline before connect, the pong deadline after (never both at once), while
   * scheduled; an idle connected session has none.
   */
  private checkDeadline: CheckDeadline | undefined;

  constructor(
    readonly ctx: NativeContext,
    socket: NativeSocket,
    transport: TransportOptions,
  ) {
    // Messages queued together go out in one frame, joined by newlines; past queue_max_size bytes
    // queued plus unsent, the client is cut off (onOverflow).
    super(socket, { maxBytes: ctx.config.client.queue_max_size, separator: SEPARATOR });
    this.framePingPong = transport.framePingPong;
    this.emulatedSession = transport.emulatedSession;
    this.transport = transport.name;
    this.proxyHeaders = transport.proxyHeaders;
    this.headerUser = transport.headerUser;
    ctx.registry.open(this);
    this.scheduleCheck(ctx.config.client.stale_close_delay);
  }

  /** The outbox's limit: the client let too many bytes pile up unsent. */
  protected override onOverflow(): void {
    this.close(Disconnects.slow);
  }

  /** The ping deadline (the session itself is it, on the shared timer wheel). */
  fire(): void {
    this.sendPing();
  }

  /** The check deadline: a connection never connected (or left unusable), or a ping not answered in time. */
  onCheckDeadline(): void {
    this.checkDeadline = undefined;
    if (this.state === 'new' || this.state === 'unusable') this.close(Disconnects.stale);
    else if (this.awaitingPong) this.close(Disconnects.noPong);
  }

  /**
   * A publication of one of this session's subscriptions, from the hub (through the subscription,
   * which the hub holds until `dropSub`; bytes already encoded for this format).
   */
  deliver(sub: ChannelSub, pub: Publication, position: StreamPosition, bytes: Buffer): void {
    if (this.state === 'closed') return;
    if (sub.buffer) {
      sub.buffer.push({ pub, position, bytes });
      return;
    }
    if (sub.positioned && pub.offset > 0) {
      if (position.epoch !== sub.epoch || pub.offset > sub.offset + 1) {
        // The stream moved on without us (lost publication or new epoch): the client must recover.
        this.insufficientState(sub, 'gap');
        return;
      }
      if (pub.offset <= sub.offset) return; // already sent (history and live overlapped)
      const maxLag = this.ctx.positionMaxTimeLag;
      if (maxLag > 0 && pub.time !== undefined && Date.now() - pub.time > maxLag) {
        // This node is too far behind the stream (channel_position_max_time_lag): the client
        // recovers from history instead.
        this.insufficientState(sub, 'time_lag');
        return;
      }
      sub.offset = pub.offset;
    }
    this.sendPublication(sub, pub, bytes);
  }

  /**
   * Sends a publication its subscription is due (its position already checked), live or held while
   * the subscription was set up: unless the client's tags filter holds it back; a payload a JSON
   * client cannot read closes the connection (only one it would be sent); a delta chain sends its delta.
   */
  sendPublication(sub: ChannelSub, pub: Publication, bytes: Buffer): void {
    if (sub.filter !== undefined && !matchesTags(sub.filter, pub.tags)) return;
    if (bytes === NON_JSON_PUSH) return this.close(Disconnects.inappropriateProtocol);
    if (this.state === 'closed') return;
    if (this.earlyPingTick !== NO_EARLY_PING && this.earlyPingTick <= timers.now) this.pingWithOutput();
    this.push(sub.delta === null ? bytes : sub.delta.push(sub.channel, pub, bytes));
  }

  /** The engine may have lost publications of a channel (the hub already dropped it): resubscribe. */
  resync(sub: ChannelSub): void {
    const channel = sub.channel;
    if (this.subs.get(channel) !== sub) return;
    if (sub.serverSide) {
      this.ctx.resyncs.engine++;
      return this.close(Disconnects.insufficientState);
    }
    this.subs.delete(channel);
    if (sub.expireTimer) clearTimeout(sub.expireTimer);
    leaveChannel(this, sub);
    // Still being set up: the client has no reply yet, and its subscribe fails with a temporary
    // error instead (setup sees the subscription gone), so the client tries again.
    if (sub.buffer) return;
    this.ctx.resyncs.engine++;
    this.write(encodePush('unsubscribe', Unsubscribes.insufficientState, channel));
  }

  /** Writes a reply or push. */
  write(bytes: Buffer): void {
    if (bytes === NON_JSON_PUSH) return this.close(Disconnects.inappropriateProtocol);
    if (this.state !== 'closed') this.push(bytes);
  }

  /** Ends the connection with a disconnect code (a WebSocket close frame with code and reason). */
  close(d: Disconnect): void {
    if (this.state === 'closed') return;
    this.ctx.log.debug({ client: this.id, user: this.user, code: d.code, reason: d.reason }, 'client disconnected by the server');
    this.state = 'closed';
    this.flush();
    this.kill();
    // A client that does not answer the close handshake is cut off, so its socket does not linger.
    closeOrCut(this.ws, () => this.ws.close(d.code, closeReason(d.reason)));
    this.cleanup();
  }

  /** A positioned subscription fell behind the stream: resubscribe (client-side) or reconnect (server-side). */
  insufficientState(sub: ChannelSub, why: ResyncReason): void {
    this.ctx.resyncs[why]++;
    if (sub.serverSide) {
      this.close(Disconnects.insufficientState);
      return;
    }
    this.dropSub(sub);
    this.write(encodePush('unsubscribe', Unsubscribes.insufficientState, sub.channel));
  }

  /** Removes a subscription locally and from the hub. */
  dropSub(sub: ChannelSub): void {
    if (this.subs.get(sub.channel) !== sub) return;
    this.subs.delete(sub.channel);
    if (sub.expireTimer) clearTimeout(sub.expireTimer);
    void this.ctx.hub.unsubscribe(sub.channel, sub).catch((err) => this.ctx.log.warn({ err }, 'hub unsubscribe failed'));
    leaveChannel(this, sub);
  }

  /** Server API: subscribe this connection to a channel (a `subscribe` push follows). */
  serverSubscribe(channel: string, opts: { claims: Record<string, unknown>; recoverSince?: StreamPosition; expireAt?: number }): Promise<void> {
    return this.serialize(() => apiSubscribe(this, channel, opts));
  }

  /** Server API: unsubscribe this connection from a channel (an `unsubscribe` push with code 2000). */
  serverUnsubscribe(channel: string): Promise<void> {
    return this.serialize(async () => {
      const sub = this.subs.get(channel);
      if (!sub) return;
      this.dropSub(sub);
      this.write(encodePush('unsubscribe', Unsubscribes.server, channel));
    });
  }

  /** Server API: change the connection's expiry (or end it when `expired`). */
  serverRefresh(opts: { expired?: boolean; expireAt?: number; info?: string }): void {
    if (opts.expired) {
      this.close(Disconnects.expired);
      return;
    }
    if (opts.info !== undefined) this.connInfo = opts.info;
    if (opts.expireAt !== undefined) this.setExpiry(opts.expireAt > 0 ? opts.expireAt * 1000 : 0);
  }

  /** Runs work after every command already received, so API actions and commands keep their order. */
  private serialize(work: () => Promise<void>): Promise<void> {
    const next = this.chain.then(work);
    this.extendChain(next.catch(() => undefined));
    return next;
  }

  /**
   * Makes `tail` the end of the command chain. Once it settles with nothing chained after it, the
   * chain is the shared settled promise again, so an idle session holds no promise of its own.
   */
  private extendChain(tail: Promise<void>): void {
    const chain: Promise<void> = tail.then(() => {
      if (this.chain === chain) this.chain = SETTLED;
    });
    this.chain = chain;
  }

  /** A message from the client: one or more commands. */
  onFrame(data: Buffer): void {
    if (this.state === 'closed' || this.state === 'unusable') {
      if (this.state === 'unusable') this.close(Disconnects.badRequest);
      return;
    }
    // The protocol's pong (an empty command, `{}`: what every idle connection sends once per ping
    // interval) with no command in flight, or while a ping waits for it, is taken at once, without
    // decoding or a turn of the chain: a slow command (an RPC to the backend) does not hold it back
    // past the pong timeout.
    if (data.length === 2 && data[0] === 0x7b && data[1] === 0x7d && (this.chain === SETTLED || this.awaitingPong)) return this.onPong();
    let commands: Command[];
    try {
      commands = decodeFrame(data.toString('utf8'));
    } catch (err) {
      this.ctx.log.debug({ client: this.id, err: (err as Error).message }, 'undecodable frame');
      this.close(Disconnects.badRequest);
      return;
    }
    // Frames waiting for their turn: past a bound the socket is not read until they drain.
    const inbound = (this.inbound ??= new Inbound(this.ws));
    inbound.add();
    this.extendChain(
      this.chain
        .then(() => this.processFrame(commands))
        .catch((err) => {
          this.ctx.log.error({ err, client: this.id }, 'command processing failed');
          this.close(Disconnects.serverError);
        })
        .finally(() => inbound.done()),
    );
  }

  /**
   * The commands of an `/emulation` request; false (not taken) while too many of its commands wait.
   * The pong to a ping sent is always taken: it is handled at once (onFrame), not queued.
   */
  emulatedFrame(data: string): boolean {
    if (this.inbound?.full && !(this.awaitingPong && data === '{}')) return false;
    this.onFrame(Buffer.from(data, 'utf8'));
    return true;
  }

  /** Resolves once `emulatedFrame` takes commands again (see emulation.ts emulateHere); undefined past its bound. */
  whenTakingEmulated(): Promise<boolean> | undefined {
    return this.ws.whenTaking ? this.ws.whenTaking() : Promise.resolve(false);
  }

  private async processFrame(commands: Command[]): Promise<void> {
    // Several subscribes (connected by then): the engine is asked for their channels together, ahead of them.
    let warmed: (() => void) | undefined;
    let warmAsked = commands.length < 2;
    try {
      for (let i = 0; i < commands.length; i++) {
        const cmd = commands[i]!;
        if (this.state === 'closed') return;
        if (this.state === 'unusable') {
          this.close(Disconnects.badRequest);
          return;
        }
        if (!warmAsked && cmd.subscribe !== undefined && this.state === 'connected') {
          warmAsked = true;
          warmed = warmFrame(this, i === 0 ? commands : commands.slice(i));
        }
        await this.processCommand(cmd);
        // A failed connect drops the rest of the frame.
        if (this.unusable) return;
      }
    } finally {
      warmed?.();
    }
  }

  private async processCommand(cmd: Command): Promise<void> {
    const method = commandMethod(cmd);
    if (cmd.id === undefined || cmd.id === null || cmd.id === 0) {
      if (method === 'send') {
        if (this.state !== 'connected') return this.close(Disconnects.badRequest);
        // No handler for asynchronous messages is configured: Centrifugo closes with 3508.
        return this.close(Disconnects.notAvailable);
      }
      return this.onPong();
    }
    const id = cmd.id;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff || !method) {
      return this.close(Disconnects.badRequest);
    }
    if (method === 'connect') {
      if (this.state !== 'new') return this.close(Disconnects.badRequest);
      return this.handleConnect(id, asObject(cmd.connect));
    }
    if (this.state !== 'connected') return this.close(Disconnects.badRequest);
    const req = asObject(cmd[method]);
    try {
      await this.dispatch(method, id, req);
    } catch (err) {
      if (err instanceof ReplyError) this.write(encodeError(id, err.error));
      else if (err instanceof DisconnectError) this.close(err.disconnect);
      else {
        logFailure(this.ctx.log, err, { client: this.id, method }, 'command failed');
        this.write(encodeError(id, Errors.internal));
      }
    }
  }

  private async dispatch(method: Method, id: number, req: Record<string, unknown>): Promise<void> {
    switch (method) {
      case 'subscribe':
        return handleSubscribe(this, id, req);
      case 'unsubscribe':
        return handleUnsubscribe(this, id, req);
      case 'publish':
        return handlePublish(this, id, req);
      case 'history':
        return handleHistory(this, id, req);
      case 'sub_refresh':
        return handleSubRefresh(this, id, req);
      case 'refresh':
        return handleRefresh(this, id, req);
      case 'presence':
      case 'presence_stats':
        return handlePresence(this, id, req, method);
      case 'rpc':
        return handleRpc(this, id, req);
      case 'ping':
        throw new DisconnectError(Disconnects.badRequest);
      case 'send':
      case 'connect':
        throw new DisconnectError(Disconnects.badRequest);
    }
  }

  private async handleConnect(id: number, req: Record<string, unknown>): Promise<void> {
    const { config, rules } = this.ctx;
    const outcome = await connectIdentity(this, req);
    if (!outcome || this.closed) return;
    if ('disconnect' in outcome) return this.close(outcome.disconnect);
    if ('error' in outcome) return this.failConnect(id, outcome.error);
    const { identity } = outcome;
    this.user = identity.user;
    this.connInfo = identity.info;
    this.meta = identity.meta;
    this.expireAt = identity.expireAt;
    const channels = identity.channels;
    const subsClaim = identity.subs;
    for (const ch of channels) {
      if (!rules.options(ch)) return this.failConnect(id, Errors.unknownChannel);
    }
    if (channels.length > config.client.channel_limit) return this.failConnect(id, Errors.limitExceeded);
    if (!this.ctx.limits.userAllowed(this.user, this.id)) return this.close(Disconnects.connectionLimit);

    this.cancelCheck();
    this.state = 'connected';
    this.ctx.registry.add(this);
    this.ctx.log.debug({ client: this.id, user: this.user }, 'client connected');

    const requested = asObject(req.subs);
    const subResults: Record<string, unknown> = {};
    const activations: Array<() => void> = [];
    for (const ch of channels) {
      const want = asObject(requested[ch]);
      try {
        const { result, activate } = await connectSubscription(this, ch, {
          recover: want.recover === true ? { offset: num(want.offset), epoch: str(want.epoch) } : undefined,
          claims: asObject(subsClaim[ch]),
        });
        subResults[ch] = result;
        activations.push(activate);
      } catch (err) {
        if (err instanceof DisconnectError) return this.close(err.disconnect);
        this.ctx.log.error({ err, client: this.id, channel: ch }, 'server-side subscription failed');
        return this.close(Disconnects.serverError);
      }
      if (this.closed) return;
    }

    const result: Record<string, unknown> = { client: this.id, version: this.ctx.version };
    // With the refresh proxy the server refreshes: the client is not told of the expiry.
    if (this.expireAt > 0 && !config.client.proxy.refresh.endpoint) {
      result.expires = true;
      result.ttl = ttlSeconds(this.expireAt);
    }
    if (!this.framePingPong && config.client.ping_interval > 0) {
      result.ping = Math.max(1, Math.round(config.client.ping_interval / 1000));
      result.pong = true;
    }
    if (Object.keys(subResults).length) result.subs = subResults;
    result.data = rawJson(identity.data);
    if (config.client.connect_include_server_time) result.time = Date.now();
    if (this.emulatedSession !== undefined) {
      result.session = this.emulatedSession;
      result.node = this.ctx.nodeId;
    }
    this.write(encodeResult(id, 'connect', result));
    for (const activate of activations) activate();
    void endOtherConnections(this);
    this.setExpiry(this.expireAt);
    this.schedulePing(true);
  }

  private failConnect(id: number, error: { code: number; message: string }): void {
    this.write(encodeError(id, error));
    this.state = 'unusable';
  }

  /**
   * Arms the connection expiry: without a refresh, the connection closes with 3005 after a grace
   * delay; with the refresh proxy, the backend is asked at the expiry instead (refreshConnectionByProxy).
   */
  setExpiry(expireAt: number): void {
    this.expireAt = expireAt;
    if (this.expireTimer) clearTimeout(this.expireTimer);
    this.expireTimer = undefined;
    if (expireAt <= 0 || this.state !== 'connected') return;
    const byProxy = this.ctx.config.client.proxy.refresh.endpoint !== '';
    const delay = Math.max(0, expireAt - Date.now()) + (byProxy ? 0 : this.ctx.config.client.expired_close_delay);
    // A timer fires after at most about 24.8 days: one due later is set again when it fires.
    this.expireTimer = setTimeout(() => {
      if (this.expireAt <= 0) return;
      if (this.expireAt > Date.now()) this.setExpiry(this.expireAt);
      else if (byProxy) refreshConnectionByProxy(this).catch((err: unknown) => logFailure(this.ctx.log, err, { client: this.id }, 'refresh failed'));
      else this.close(Disconnects.expired);
    }, Math.min(delay, 2 ** 31 - 1));
  }

  private schedulePing(first: boolean): void {
    const interval = this.ctx.config.client.ping_interval;
    if (interval <= 0 || this.state !== 'connected') return;
    const delay = first ? interval / 2 + Math.random() * (interval / 2) : interval;
    timers.schedule(this, delay);
    // Protocol pings (not WebSocket ping frames, which ws writes at once) may go out a little early, in
    // the same write as a publication, instead of in a write of their own.
    if (!this.framePingPong) this.earlyPingTick = timers.tickIn(delay - interval / PING_EARLY_PART);
  }

  /** A publication is going out while the next ping is nearly due: the ping goes with it. */
  private pingWithOutput(): void {
    // Sending reschedules the ping deadline; while a pong is awaited, the scheduled ping stays.
    if (this.awaitingPong) this.earlyPingTick = NO_EARLY_PING;
    else this.sendPing(true);
  }

  /** Sends a ping: `withOutput`, queued to go in one write with the publication that follows it. */
  private sendPing(withOutput = false): void {
    this.earlyPingTick = NO_EARLY_PING;
    if (this.state !== 'connected') return;
    if (this.framePingPong) this.ws.ping();
    else this.push(PING, false, !withOutput);
    // A ping still unanswered keeps its pong deadline: a new ping does not push it back (it would,
    // forever, with a pong timeout as long as the ping interval).
    if (!this.awaitingPong) this.scheduleCheck(this.ctx.config.client.pong_timeout);
    this.awaitingPong = true;
    this.schedulePing(false);
  }

  /** The client's pong (a protocol `{}` or a WebSocket pong frame). */
  onPong(): void {
    if (this.state !== 'connected' || !this.awaitingPong) return this.close(Disconnects.badRequest);
    this.awaitingPong = false;
    this.cancelCheck();
  }

  private scheduleCheck(delayMs: number): void {
    timers.schedule((this.checkDeadline ??= new CheckDeadline(this)), delayMs);
  }

  private cancelCheck(): void {
    if (!this.checkDeadline) return;
    timers.cancel(this.checkDeadline);
    this.checkDeadline = undefined;
  }

  /** The connection is gone (closed by either side): the session ends. */
  cleanup(): void {
    if (this.state !== 'closed') this.ctx.log.debug({ client: this.id, user: this.user }, 'client connection closed');
    this.state = 'closed';
    timers.cancel(this);
    this.cancelCheck();
    if (this.expireTimer) clearTimeout(this.expireTimer);
    for (const sub of this.subs.list()) this.dropSub(sub);
    this.ctx.registry.remove(this);
    abandonProxyCalls(this);
  }
}

/**
 * A ping may go this part of the ping interval early, with a publication (a tenth: 2.5 s of 25 s).
 * Small, since pinging earlier means pinging more often.
 */
const PING_EARLY_PART = 10;

/** `earlyPingTick` when no early ping is scheduled. */
const NO_EARLY_PING = -1;

/** Where a session's chain of commands starts. */
const SETTLED: Promise<void> = Promise.resolve();

/** A session's second deadline on the timer wheel (a class: no closure per connection). */
class CheckDeadline extends DeadlineObject {
  constructor(private readonly session: NativeSession) {
    super();
  }

  fire(): void {
    this.session.onCheckDeadline();
  }
}

/** A close reason cut to the 123 bytes a close frame allows, on a character boundary. */
function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    bytes += Buffer.byteLength(ch);
    if (bytes > 123) break;
    out += ch;
  }
  return out;
}

export { RawJson };
