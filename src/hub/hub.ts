// The hub: channel -> this node's subscribers. It asks the engine for a channel once, however many
// local subscribers want it, and encodes each publication once per wire format, handing the same
// bytes to every subscriber of that format.
import type { ClientInfo, Engine, JoinLeave, Publication, StreamPosition } from '../engine/engine.js';
import { FirstInline } from './first-inline.js';

/** A wire format name, e.g. `native`. */
export type WireFormat = string;

/** Turns a publication into the bytes a subscriber of one format receives. */
export type PublicationEncoder = (channel: string, pub: Publication) => Buffer;

/** Turns a client's join or leave into the bytes a subscriber of one format receives. */
export type JoinLeaveEncoder = (channel: string, kind: JoinLeave, info: ClientInfo) => Buffer;

/**
 * Something on this node that receives a channel's publications: a session (Webdis, ws4redis) or one
 * subscription of a session (native).
 */
export interface Subscriber {
  readonly format: WireFormat;
  /** Called in offset order; `bytes` is the publication encoded for `format`, shared by all subscribers. */
  deliver(channel: string, pub: Publication, position: StreamPosition, bytes: Buffer): void;
  /**
   * The engine may have lost publications of this channel: the subscriber leaves the channel (the
   * hub has already forgotten it) and its client subscribes again, recovering what it can.
   */
  resync(channel: string): void;
  /** True when the subscriber is sent the channel's joins and leaves (see `joinLeave`). */
  readonly pushJoinLeave?: boolean;
  /** A join or leave of the channel, encoded for `format` (shared by all such subscribers). */
  joinLeave?(bytes: Buffer): void;
}

/**
 * One channel's local subscribers. Most channels of a personal kind have one, so the first is kept in
 * a field and a Map is made only from the second on (see FirstInline): delivering to a lone
 * subscriber then needs no iterator.
 */
class Subscribers extends FirstInline<Subscriber, Subscriber> {
  protected keyOf(sub: Subscriber): Subscriber {
    return sub;
  }
}

/** Channel -> local subscribers, reference-counting the engine subscription. */
export class Hub {
  /** Publications that reached at least one local subscriber (read by metrics). */
  publications = 0;
  /** Publications handed to subscribers, one per subscriber (read by metrics). */
  deliveries = 0;
  private readonly channels = new Map<string, Subscribers>();
  /** Per channel, the engine subscribe/unsubscribe in flight, so they apply in order. */
  private readonly pending = new Map<string, Promise<void>>();
  /**
   * Channels subscribed at the engine ahead of their first local subscriber (see `warm`), each with
   * the mark of the `warm` call that did it: the first subscriber takes the engine subscription over
   * instead of asking for another.
   */
  private readonly warming = new Map<string, object>();

  private readonly encoders: Record<WireFormat, PublicationEncoder>;
  private readonly joinLeaveEncoders: Record<WireFormat, JoinLeaveEncoder> = {};

  constructor(
    private readonly engine: Engine,
    encoders: Readonly<Record<WireFormat, PublicationEncoder>>,
  ) {
    this.encoders = { ...encoders };
  }

  /** Adds a wire format (a dialect's), with the encoder its subscribers' bytes come from. */
  registerFormat(format: WireFormat, encoder: PublicationEncoder): void {
    if (this.encoders[format]) throw new Error(`wire format ${format} is already registered`);
    this.encoders[format] = encoder;
  }

  /** Adds a wire format's encoder of joins and leaves (formats without one are not sent them). */
  registerJoinLeaveFormat(format: WireFormat, encoder: JoinLeaveEncoder): void {
    this.joinLeaveEncoders[format] = encoder;
  }

  /** Adds a subscriber; resolves once the engine delivers the channel to this node. */
  async subscribe(channel: string, sub: Subscriber): Promise<void> {
    let subs = this.channels.get(channel);
    const first = !subs;
    if (!subs) {
      subs = new Subscribers();
      this.channels.set(channel, subs);
    }
    subs.set(sub);
    try {
      // A warmed channel's engine subscription is this subscriber's now (still in flight, perhaps).
      if (first && !this.warming.delete(channel)) await this.enqueue(channel, () => this.engine.subscribe(channel));
      else await this.pending.get(channel);
    } catch (err) {
      // The engine did not subscribe: the channel is not on this node, for this subscriber nor for
      // the ones that joined while it was being tried (they get the same error), so the next
      // subscriber tries again.
      if (this.channels.get(channel) === subs) this.channels.delete(channel);
      throw err;
    }
  }

  /**
   * Subscribes the engine to `channels` ahead of their subscribers, all at once, where no local
   * subscriber has them yet: a client's frame of several subscribes, each answered only after the
   * one before, would otherwise wait for one engine round trip per channel (the Redis engine's
   * SUBSCRIBEs, sent in one command when asked for together). Call the returned function once
   * those subscribes are done: a warmed channel no subscriber took over is unsubscribed.
   */
  warm(channels: readonly string[]): () => void {
    const mark = {};
    const warmed: string[] = [];
    /** Forgets a channel this call warmed, unless a subscriber took it over (or a later call warmed it again). */
    const forget = (channel: string) => {
      if (this.warming.get(channel) === mark) this.warming.delete(channel);
    };
    for (const channel of channels) {
      if (this.channels.has(channel) || this.pending.has(channel) || this.warming.has(channel)) continue;
      this.warming.set(channel, mark);
      warmed.push(channel);
      // A failure is the first subscriber's to see (it awaits this), or nobody's: it subscribes afresh.
      this.enqueue(channel, () => this.engine.subscribe(channel)).catch(() => forget(channel));
    }
    return () => {
      for (const channel of warmed) {
        forget(channel);
        if (!this.channels.has(channel)) this.release(channel).catch(() => undefined);
      }
    };
  }

  /** Removes a subscriber; the engine subscription goes when the last one leaves. */
  async unsubscribe(channel: string, sub: Subscriber): Promise<void> {
    const subs = this.channels.get(channel);
    if (!subs || !subs.delete(sub)) return;
    if (subs.size > 0) return;
    this.channels.delete(channel);
    await this.release(channel);
  }

  /** Unsubscribes the engine from a channel, in its turn, unless it has a subscriber (or is warmed) again by then. */
  private release(channel: string): Promise<void> {
    return this.enqueue(channel, async () => {
      if (!this.channels.has(channel) && !this.warming.has(channel)) await this.engine.unsubscribe(channel);
    });
  }

  /** Delivers a publication from the engine to every local subscriber of the channel; returns how many. */
  onPublication(channel: string, pub: Publication, position: StreamPosition): number {
    const subs = this.channels.get(channel);
    if (!subs) return 0;
    const one = subs.inline;
    if (one !== undefined) {
      this.publications++;
      this.deliveries++;
      one.deliver(channel, pub, position, this.encoders[one.format]!(channel, pub));
      return 1;
    }
    const many = subs.map;
    if (!many || many.size === 0) return 0;
    this.publications++;
    this.deliveries += many.size;
    let format: WireFormat | undefined;
    let bytes: Buffer | undefined;
    let cache: Map<WireFormat, Buffer> | undefined;
    for (const sub of many.values()) {
      // Nearly every channel has one format: keep the common case free of map lookups.
      if (sub.format !== format) {
        if (format !== undefined) (cache ??= new Map()).set(format, bytes!);
        format = sub.format;
        bytes = cache?.get(format) ?? this.encoders[format]!(channel, pub);
      }
      sub.deliver(channel, pub, position, bytes!);
    }
    return many.size;
  }

  /** Hands a client's join or leave to the channel's local subscribers that are sent them, encoded once per format. */
  onJoinLeave(channel: string, kind: JoinLeave, info: ClientInfo): void {
    const subs = this.channels.get(channel);
    if (!subs) return;
    let cache: Map<WireFormat, Buffer> | undefined;
    for (const sub of subs.list()) {
      if (!sub.pushJoinLeave || !sub.joinLeave) continue;
      const encoder = this.joinLeaveEncoders[sub.format];
      if (!encoder) continue;
      cache ??= new Map();
      let bytes = cache.get(sub.format);
      if (!bytes) cache.set(sub.format, (bytes = encoder(channel, kind, info)));
      sub.joinLeave(bytes);
    }
  }

  /** The engine lost its delivery path for these channels (all when none are given): their subscribers resynchronise. */
  onResync(channels?: readonly string[]): void {
    // A warmed channel lost too: its first subscriber subscribes afresh.
    if (channels) for (const channel of channels) this.warming.delete(channel);
    else this.warming.clear();
    const lost: Array<[string, Subscribers]> = [];
    for (const channel of channels ?? [...this.channels.keys()]) {
      const subs = this.channels.get(channel);
      if (!subs) continue;
      this.channels.delete(channel);
      lost.push([channel, subs]);
    }
    for (const [channel, subs] of lost) for (const sub of subs.list()) sub.resync(channel);
  }

  /** How many channels have a local subscriber (without building channelCounts()). */
  channelCount(): number {
    return this.channels.size;
  }

  /** Active channels with their local subscriber counts. */
  channelCounts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [ch, subs] of this.channels) out.set(ch, subs.size);
    return out;
  }

  /** How many (channel, subscriber) pairs this node holds. */
  subscriptionCount(): number {
    let n = 0;
    for (const subs of this.channels.values()) n += subs.size;
    return n;
  }

  private enqueue(channel: string, op: () => Promise<void>): Promise<void> {
    const prev = this.pending.get(channel) ?? Promise.resolve();
    const next = prev.then(op, op);
    this.pending.set(channel, next);
    const clear = () => {
      if (this.pending.get(channel) === next) this.pending.delete(channel);
    };
    next.then(clear, clear);
    return next;
  }
}
