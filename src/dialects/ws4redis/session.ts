// One ws4redis connection: its channels joined in the hub, the persisted messages sent first, messages
// from the browser published and stored in order, echo suppression, heartbeats, and a close handled
// only after the messages received before it are published and stored (as ws4redis' loop does).
import type { WebSocket } from 'ws';
import type { Ws4RedisFlag } from '../../config/schema.js';
import { rawChannel, type Publication, type StreamPosition } from '../../engine/engine.js';
import type { Subscriber } from '../../hub/hub.js';
import { Outbox } from '../../hub/outbox.js';
import { closeOrCut, within } from '../../server/bounded.js';
import { Inbound } from '../../server/inbound.js';
import { connectionChannels, type Ws4RedisIdentity } from './channels.js';
import type { Ws4RedisContext } from './context.js';
import { isText, WS4REDIS_FORMAT } from './frames.js';

/** What an accepted upgrade settled for the connection. */
export interface SessionSetup {
  readonly facility: string;
  /** The flags left after the safety rules. */
  readonly flags: readonly Ws4RedisFlag[];
  readonly echo: boolean;
  readonly identity: Ws4RedisIdentity;
}

/** Close codes this dialect sends. */
export const CloseCodes = {
  normal: 1000,
  shutdown: 1001,
  slow: 1008,
  internal: 1011,
} as const;

/** Longest wait for pending publishes before a close is answered anyway. */
const CLOSE_WAIT_MS = 10_000;
/** How long a resubscription after a lost engine connection is retried before the client is sent away. */
const REJOIN_GIVE_UP_MS = 30_000;

type WsClose = WebSocket['close'];

/** A ws4redis session over one WebSocket. */
export class Ws4RedisSession implements Subscriber {
  readonly format = WS4REDIS_FORMAT;
  /** Resolves once the socket is closed and the session left the hub. */
  readonly done: Promise<void>;
  /** The Redis channel names subscribed to, in ws4redis' order. */
  readonly subscribed: readonly string[];
  /** The Redis channel names a browser message goes to. */
  readonly publishing: readonly string[];

  private state: 'open' | 'closing' | 'closed' = 'open';
  private readonly outbox: Outbox;
  /** Live messages held back until the persisted ones are out; null once they are. */
  private held: Array<{ channel: string; bytes: Buffer }> | null = [];
  private readonly joined = new Set<string>();
  private readonly rejoining = new Set<string>();
  /** Engine channel -> Redis channel name, for the subscribed ones. */
  private readonly names = new Map<string, string>();
  /** The last message seen per engine channel, so a resubscription resends only what changed. */
  private readonly lastSeen = new Map<string, Buffer>();
  /**
   * What echo suppression compares with: the socket's last message, as ws4redis's loop keeps it
   * (`recvmsg`). A heartbeat or an empty message received clears it; a message to publish sets it
   * once published (its echo is the one to suppress), unless a later one was received meanwhile.
   */
  private lastMessage: Buffer | undefined;
  /** Messages received from the client so far (which of them set `lastMessage`). */
  private received = 0;
  /** Browser messages, persisted reads and the close are handled in this order. */
  private chain: Promise<void>;
  /** Browser messages waiting to be published: past a bound the socket is not read until they drain. */
  private readonly inbound: Inbound;
  /** A publish failed: the connection is closing, and the messages after it are not published. */
  private publishFailed = false;
  /** Leaving every joined channel, once begun (at the client's close, or when the socket closed). */
  private leaving: Promise<void> | undefined;
  /** A reserved close code (1004, 1005, 1006, 1015) the client sent on the wire. */
  private reservedCode: number | undefined;
  private readonly heartbeat: Buffer | undefined;
  private readonly realClose: WsClose;
  private resolveDone!: () => void;

  constructor(
    private readonly ctx: Ws4RedisContext,
    private readonly ws: WebSocket,
    private readonly setup: SessionSetup,
  ) {
    const { prefix, heartbeat, queue_max_size } = ctx.config;
    this.subscribed = connectionChannels(prefix, setup.facility, 'subscribe', setup.flags, setup.identity);
    this.publishing = connectionChannels(prefix, setup.facility, 'publish', setup.flags, setup.identity);
    for (const name of this.subscribed) this.names.set(rawChannel(name), name);
    this.heartbeat = heartbeat ? Buffer.from(heartbeat) : undefined;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.inbound = new Inbound(ws);
    this.outbox = new Outbox(ws, {
      maxBytes: queue_max_size,
      separator: null,
      onOverflow: () => this.close(CloseCodes.slow, 'slow consumer: too many unsent bytes'),
    });
    // ws answers a client's close frame at once through the socket's `close`; ws4redis first
    // finishes the messages received before it. Going through this socket's own `close` lets the
    // answer wait for them.
    this.realClose = ws.close.bind(ws);
    ws.close = ((code?: number, reason?: string | Buffer) => this.onCloseRequested(code, reason)) as WsClose;
    ws.on('message', (data: Buffer) => this.onMessage(data));
    ws.on('error', (err: Error & { code?: string }) => this.onError(err));
    ws.on('close', (code: number) => this.onClosed(code));
    this.chain = this.start().catch((err: unknown) => {
      this.ctx.log.error({ err, facility: setup.facility }, 'ws4redis connection setup failed');
      this.close(CloseCodes.internal, 'internal error');
    });
  }

  /** The hub hands a publication of a joined channel (the payload as published). */
  deliver(channel: string, _pub: Publication, _position: StreamPosition, bytes: Buffer): void {
    // ws4redis sends no empty message (`if sendmsg …`).
    if (this.state !== 'open' || bytes.length === 0) return;
    this.lastSeen.set(channel, bytes);
    if (this.held) this.held.push({ channel, bytes });
    else this.forward(bytes);
  }

  /** The engine may have lost messages of a channel (the hub already dropped us): join it again. */
  resync(channel: string): void {
    // Also for a channel whose first join is still in flight: the hub forgot it all the same.
    if (this.state !== 'open' || !this.names.has(channel) || this.rejoining.has(channel)) return;
    this.joined.delete(channel);
    this.rejoining.add(channel);
    void this.rejoin(channel, Date.now()).finally(() => this.rejoining.delete(channel));
  }

  /** Server-side close: flushes what is queued, sends the close frame, cuts off a silent client. */
  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closing';
    if (wasOpen) this.outbox.flush();
    this.outbox.kill();
    closeOrCut(this.ws, () => this.realClose(code, reason));
  }

  /** Node shutdown: lets pending publishes finish (bounded), then closes with 1001 and waits (bounded). */
  async shutdown(waitMs: number): Promise<void> {
    await this.settled(waitMs);
    this.close(CloseCodes.shutdown, 'server shutdown');
    await within(this.done, waitMs);
    if (this.state !== 'closed') this.ws.terminate();
  }

  private async start(): Promise<void> {
    const channels = this.subscribed.map(rawChannel);
    const results = await Promise.allSettled(channels.map((ch) => this.join(ch)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      this.ctx.log.warn({ err: (failed.reason as Error).message, facility: this.setup.facility }, 'ws4redis subscribe failed; closing the connection');
      return this.close(CloseCodes.internal, 'subscribe failed');
    }
    try {
      for (const name of this.subscribed) {
        const value = await this.ctx.engine.getValue(name);
        if (this.state !== 'open') return;
        // ws4redis skips empty values too (`if message:`).
        if (value && value.length > 0) {
          if (!this.lastSeen.has(rawChannel(name))) this.lastSeen.set(rawChannel(name), value);
          this.outbox.push(value, !isText(value));
        }
      }
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message, facility: this.setup.facility }, 'ws4redis persisted message read failed; closing the connection');
      return this.close(CloseCodes.internal, 'persisted messages unavailable');
    }
    const held = this.held ?? [];
    this.held = null;
    for (const { bytes } of held) this.forward(bytes);
  }

  private async join(channel: string): Promise<void> {
    try {
      await this.ctx.hub.subscribe(channel, this);
    } catch (err) {
      // A failed first subscribe must not leave the hub believing the channel is delivered.
      await this.ctx.hub.unsubscribe(channel, this).catch(() => undefined);
      throw err;
    }
    if (this.state === 'open') this.joined.add(channel);
    else await this.ctx.hub.unsubscribe(channel, this).catch(() => undefined);
  }

  /** Joins a channel again after the engine lost it; the persisted message goes out when it changed meanwhile. */
  private async rejoin(channel: string, since: number): Promise<void> {
    for (let attempt = 0; this.state === 'open'; attempt++) {
      try {
        await this.join(channel);
        const value = await this.ctx.engine.getValue(this.names.get(channel)!);
        if (this.state !== 'open' || !value || value.length === 0) return;
        const seen = this.lastSeen.get(channel);
        if (seen && seen.equals(value)) return;
        this.lastSeen.set(channel, value);
        if (this.held) this.held.push({ channel, bytes: value });
        else this.forward(value);
        return;
      } catch (err) {
        if (Date.now() - since > REJOIN_GIVE_UP_MS) {
          this.ctx.log.warn({ err: (err as Error).message, channel }, 'ws4redis resubscribe kept failing; closing the connection');
          return this.close(CloseCodes.internal, 'subscription lost');
        }
        await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, 5_000)));
      }
    }
  }

  /**
   * Sends a live message unless it is this socket's own echo and `echo` was not asked for. As
   * ws4redis (`if sendmsg`), an empty message is not sent.
   */
  private forward(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (!this.setup.echo && this.lastMessage && bytes.equals(this.lastMessage)) return;
    this.outbox.push(bytes, !isText(bytes));
  }

  private onMessage(data: Buffer): void {
    if (this.state !== 'open') return;
    const seq = ++this.received;
    if (this.heartbeat && data.equals(this.heartbeat)) {
      this.lastMessage = undefined;
      this.outbox.push(this.heartbeat, !isText(this.heartbeat));
      return;
    }
    // ws4redis neither publishes nor stores an empty message (`if recvmsg:`).
    if (data.length === 0) {
      this.lastMessage = undefined;
      return;
    }
    // A copy: ws may hand a view of a larger socket chunk, and the message is kept (echo, storage).
    const message = Buffer.from(data);
    // A socket that may not publish still compares with what it sent, as ws4redis does.
    if (this.publishing.length === 0) {
      this.lastMessage = message;
      return;
    }
    this.inbound.add();
    this.chain = this.chain.then(() => this.publish(message, seq)).finally(() => this.inbound.done());
  }

  private async publish(message: Buffer, seq: number): Promise<void> {
    if (this.publishFailed) return; // the connection is closing: the messages after it are dropped
    const { engine, config } = this.ctx;
    // Set when published, not when received: the echo to suppress is this message's.
    if (seq === this.received) this.lastMessage = message;
    try {
      for (const name of this.publishing) {
        await engine.publish(rawChannel(name), { data: message });
        if (config.expire > 0) await engine.setValue(name, message, config.expire);
      }
    } catch (err) {
      this.publishFailed = true;
      this.ctx.log.warn({ err: (err as Error).message, facility: this.setup.facility }, 'ws4redis publish failed; closing the connection');
      this.close(CloseCodes.internal, 'publish failed');
    }
  }

  /** ws answers the client's close (or a protocol error) through here: after the pending publishes. */
  private onCloseRequested(code?: number, reason?: string | Buffer): void {
    if (this.state !== 'open') {
      this.realClose(code, reason);
      return;
    }
    this.state = 'closing';
    this.outbox.kill();
    // Leaves its channels before answering, as ws4redis releases its subscription on the close: once
    // the client has the answer, a PUBLISH no longer counts it as a receiver.
    void this.settled(CLOSE_WAIT_MS)
      .then(() => within(this.leaveChannels(), CLOSE_WAIT_MS))
      .then(() => {
        // A reserved code from the client is a normal close to ws4redis clients, not a protocol error.
        if (this.reservedCode !== undefined) this.realClose(CloseCodes.normal);
        else this.realClose(code, reason);
      });
  }

  /** Leaves every joined channel; the same promise for every caller. */
  private leaveChannels(): Promise<void> {
    this.leaving ??= Promise.all([...this.joined].map((ch) => this.ctx.hub.unsubscribe(ch, this).catch(() => undefined))).then(() => this.joined.clear());
    return this.leaving;
  }

  private onError(err: Error & { code?: string }): void {
    if (err.code === 'WS_ERR_INVALID_CLOSE_CODE') {
      const code = Number(/(\d+)\s*$/.exec(err.message)?.[1]);
      if (code >= 1000 && code <= 1015) {
        this.reservedCode = code;
        return;
      }
    }
    this.ctx.log.debug({ err: err.message, code: err.code, facility: this.setup.facility }, 'ws4redis websocket error');
  }

  private onClosed(code: number): void {
    this.state = 'closed';
    this.outbox.kill();
    this.ctx.log.debug({ facility: this.setup.facility, code: this.reservedCode ?? code }, 'ws4redis connection closed');
    // Messages received before the close are still published and stored; then the channels go.
    void this.settled(CLOSE_WAIT_MS)
      .then(() => this.leaveChannels())
      .then(() => this.resolveDone());
  }

  /** Resolves when the work received so far is done, or after `ms`. */
  private settled(ms: number): Promise<void> {
    return within(this.chain.catch(() => undefined), ms);
  }
}
