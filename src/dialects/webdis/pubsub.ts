// A Webdis client's subscriptions (a WebSocket or a comet response): Redis SUBSCRIBE/PSUBSCRIBE
// semantics on engine raw and pattern channels, with running counts, replies before the first
// message of a channel, and pushes labelled with the verb that created the subscription as the
// client spelled it. Each publication is encoded once per wire format by the hub; a client that
// spelled the verb in another case gets the shared bytes relabelled.
import { channelKind, patternChannel, rawChannel, type Publication } from '../../engine/engine.js';
import type { Hub, Subscriber } from '../../hub/hub.js';
import { replyJson } from './json-codec.js';
import { relabelMsgpack, replyMsgpack } from './msgpack-codec.js';
import { array, bulk, encodeResp, error, type RespValue } from './resp.js';

/** The wire format of `/.json` subscribers (pushes labelled SUBSCRIBE / PSUBSCRIBE). */
export const JSON_FORMAT = 'webdis-json';
/** The wire format of `/.raw` subscribers (RESP arrays of bulk strings). */
export const RAW_FORMAT = 'webdis-raw';
/** The hub's format name for `.msg` comet streams' pushes. */
export const MSGPACK_FORMAT = 'webdis-msgpack';

/** How a client reads replies: Webdis JSON or RESP. */
export type WireMode = 'json' | 'raw' | 'msgpack';

/** Longest wait between two attempts to subscribe again after the engine lost its pub/sub link. */
const RESUBSCRIBE_MAX_DELAY_MS = 1_000;

/** Most subscriptions one client may hold: each costs memory on the node. */
export const MAX_SUBSCRIPTIONS = 10_000;
/**
 * Most patterns among them: on the memory engine every publication to a raw channel is matched
 * against every pattern of the node, so patterns cost time on each publish, not only memory.
 */
export const MAX_PATTERNS = 256;

/** Encodes a publication for `/.json` subscribers: `{"SUBSCRIBE":["message",chan,payload]}` or a pmessage. */
export function encodeJsonPush(channel: string, pub: Publication): Buffer {
  return Buffer.from(replyJson(...pushOf(channel, pub)));
}

/** Encodes a publication for `.msg` comet streams: the JSON push's shape in MessagePack. */
export function encodeMsgpackPush(channel: string, pub: Publication): Buffer {
  return replyMsgpack(...pushOf(channel, pub));
}

/** Encodes a publication for `/.raw` subscribers: `*3 message chan payload` or `*4 pmessage …`. */
export function encodeRawPush(channel: string, pub: Publication): Buffer {
  return encodeResp(pushOf(channel, pub)[1]);
}

function pushOf(channel: string, pub: Publication): [string, RespValue] {
  const { kind, name } = channelKind(channel);
  if (kind === 'pattern') return ['PSUBSCRIBE', array([bulk('pmessage'), bulk(name), bulk(pub.channel ?? ''), bulk(pub.data)])];
  return ['SUBSCRIBE', array([bulk('message'), bulk(name), bulk(pub.data)])];
}

/**
 * The distinct patterns this node's Webdis clients hold, up to `webdis.max_node_patterns` (0: no
 * limit): every publication to a raw channel is matched against each of them (by the memory engine
 * here, by Redis with the Redis engine), so their number bounds the cost of every publish.
 */
export class PatternBudget {
  /** Holders of each pattern channel. */
  private readonly holders = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Takes one more holder of `channel`; false when it is a pattern new to the node past the limit. */
  take(channel: string): boolean {
    const n = this.holders.get(channel);
    if (n === undefined && this.max > 0 && this.holders.size >= this.max) return false;
    this.holders.set(channel, (n ?? 0) + 1);
    return true;
  }

  /** A holder of `channel` let it go. */
  give(channel: string): void {
    const n = this.holders.get(channel);
    if (n === undefined) return;
    if (n <= 1) this.holders.delete(channel);
    else this.holders.set(channel, n - 1);
  }
}

/** What a client's subscriptions share with the rest of the node. */
export interface PubSubContext {
  readonly hub: Hub;
  /** Most bytes of pushes held for one client while its subscribe replies are not out. */
  readonly queueMaxSize: number;
  /** Raw names that are not this dialect's (Herald's own, ws4redis's): a pattern does not deliver them. */
  readonly reserved: (name: string) => boolean;
  readonly patterns: PatternBudget;
}

/** Subscribing failed because the engine (Redis) could not subscribe. */
export class SubscribeFailedError extends Error {
  override readonly name = 'SubscribeFailedError';
}

interface Sub {
  readonly channel: string;
  /** The verb as the client spelled it, used as the label of this subscription's pushes. */
  readonly label: string;
  /** Pushes held until the subscribe reply is out; null once live. */
  buffer: Buffer[] | null;
  bufferedBytes: number;
  retry?: NodeJS.Timeout;
}

/** What a client's subscriptions write to and how they end. */
export interface PubSubSink {
  /** Writes one reply or push (a WebSocket frame, a comet chunk). */
  write(bytes: Buffer): void;
  /** The client cannot keep up (held pushes over `maxHeldBytes`): end it. */
  overflow(): void;
}

/** One client's subscriptions. */
export class PubSub implements Subscriber {
  readonly format: string;
  private readonly subs = new Map<string, Sub>();
  private closed = false;

  private readonly hub: Hub;
  private readonly maxHeldBytes: number;
  private readonly reserved: (name: string) => boolean;
  private readonly patterns: PatternBudget;

  constructor(
    ctx: PubSubContext,
    private readonly mode: WireMode,
    private readonly sink: PubSubSink,
  ) {
    this.format = mode === 'json' ? JSON_FORMAT : mode === 'msgpack' ? MSGPACK_FORMAT : RAW_FORMAT;
    this.hub = ctx.hub;
    this.maxHeldBytes = ctx.queueMaxSize;
    this.reserved = ctx.reserved;
    this.patterns = ctx.patterns;
  }

  /** Channels plus patterns subscribed: the count Redis reports. */
  get count(): number {
    return this.subs.size;
  }

  /**
   * SUBSCRIBE (`pattern` false) or PSUBSCRIBE: one reply per name with the running count, written once
   * the engine delivers the channel. The engine subscribes the names together (one Redis round trip
   * for many); throws SubscribeFailedError, after the replies of those that worked, when some failed.
   */
  async subscribe(verb: string, pattern: boolean, names: readonly string[]): Promise<void> {
    if (this.closed) return; // the client is gone: nothing to take, nobody to answer
    const word = pattern ? 'psubscribe' : 'subscribe';
    let count = this.subs.size;
    const steps: Array<{ name: string; sub?: Sub; done?: Promise<void>; refused?: string }> = [];
    let patterns = 0;
    if (pattern) for (const key of this.subs.keys()) if (channelKind(key).kind === 'pattern') patterns++;
    // One reply per name, as Redis gives: a name refused by a limit gets an error, the others go on.
    for (const name of names) {
      const channel = pattern ? patternChannel(name) : rawChannel(name);
      if (this.subs.has(channel)) {
        steps.push({ name });
      } else if (this.subs.size >= MAX_SUBSCRIPTIONS) {
        steps.push({ name, refused: `ERR too many subscriptions on one connection (${MAX_SUBSCRIPTIONS})` });
      } else if (pattern && patterns >= MAX_PATTERNS) {
        steps.push({ name, refused: `ERR too many patterns on one connection (${MAX_PATTERNS})` });
      } else if (pattern && !this.patterns.take(channel)) {
        steps.push({ name, refused: `ERR too many patterns on this node (webdis.max_node_patterns: ${this.patterns.max})` });
      } else {
        if (pattern) patterns++;
        const sub: Sub = { channel, label: verb, buffer: [], bufferedBytes: 0 };
        this.subs.set(channel, sub);
        steps.push({ name, sub, done: this.hub.subscribe(channel, this) });
      }
    }
    const results = await Promise.allSettled(steps.map((step) => step.done));
    let failure: unknown;
    for (let i = 0; i < steps.length; i++) {
      const { name, sub, refused } = steps[i]!;
      const result = results[i]!;
      if (refused) {
        const tooMany = error(refused);
        this.sink.write(this.encode(verb, tooMany));
        continue;
      }
      if (result.status === 'rejected') {
        failure ??= result.reason;
        // Left alone when an UNSUBSCRIBE (which left the channel) or a new SUBSCRIBE took its place.
        if (this.subs.get(sub!.channel) === sub) {
          this.drop(sub!);
          await this.hub.unsubscribe(sub!.channel, this).catch(() => undefined);
        }
        continue;
      }
      if (this.closed) return;
      if (sub) {
        if (this.subs.get(sub.channel) !== sub) continue;
        count++;
      }
      this.sink.write(this.confirmation(verb, word, name, count));
      if (sub) {
        const held = sub.buffer!;
        sub.buffer = null;
        for (const bytes of held) this.sink.write(bytes);
      }
    }
    if (failure !== undefined) throw new SubscribeFailedError((failure as Error).message, { cause: failure });
  }

  /** UNSUBSCRIBE / PUNSUBSCRIBE the names, or every channel (pattern) of that kind when none is given. */
  async unsubscribe(verb: string, pattern: boolean, names: readonly string[]): Promise<void> {
    const word = pattern ? 'punsubscribe' : 'unsubscribe';
    const kind = pattern ? 'pattern' : 'raw';
    const targets = names.length > 0 ? names : [...this.subs.keys()].map(channelKind).filter((c) => c.kind === kind).map((c) => c.name);
    if (targets.length === 0) {
      this.sink.write(this.confirmation(verb, word, null, this.subs.size));
      return;
    }
    const replies: Buffer[] = [];
    const leaving: Array<Promise<void>> = [];
    for (const name of targets) {
      const channel = pattern ? patternChannel(name) : rawChannel(name);
      const sub = this.subs.get(channel);
      if (sub) {
        this.drop(sub);
        leaving.push(this.hub.unsubscribe(channel, this).catch(() => undefined));
      }
      replies.push(this.confirmation(verb, word, name, this.subs.size));
    }
    // The engine leaves the channels together (one Redis UNSUBSCRIBE for many).
    await Promise.all(leaving);
    if (this.closed) return;
    for (const reply of replies) this.sink.write(reply);
  }

  deliver(channel: string, pub: Publication, _position: unknown, bytes: Buffer): void {
    const sub = this.subs.get(channel);
    if (!sub || this.closed) return;
    if (pub.channel !== undefined && this.reserved(pub.channel)) return; // a pattern's match that is not ours
    const out = this.relabel(sub, bytes);
    if (sub.buffer === null) return this.sink.write(out);
    sub.buffer.push(out);
    sub.bufferedBytes += out.length;
    if (sub.bufferedBytes > this.maxHeldBytes) this.sink.overflow();
  }

  /** The engine lost its delivery path and the hub forgot this subscriber: subscribe again until it works. */
  resync(channel: string): void {
    const sub = this.subs.get(channel);
    if (!sub || this.closed) return;
    const attempt = (delay: number) => {
      sub.retry = setTimeout(() => {
        sub.retry = undefined;
        if (this.closed || this.subs.get(channel) !== sub) return;
        this.hub.subscribe(channel, this).then(
          () => {
            if (this.closed || this.subs.get(channel) !== sub) void this.hub.unsubscribe(channel, this).catch(() => undefined);
          },
          () => {
            void this.hub.unsubscribe(channel, this).catch(() => undefined);
            attempt(Math.min(delay * 2, RESUBSCRIBE_MAX_DELAY_MS));
          },
        );
      }, delay);
      sub.retry.unref();
    };
    attempt(100);
  }

  /** Leaves every channel (the client is gone). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sub of [...this.subs.values()]) {
      this.drop(sub);
      void this.hub.unsubscribe(sub.channel, this).catch(() => undefined);
    }
  }

  /** Forgets a subscription (the caller leaves its channel): its retry stops, its pattern is given back. */
  private drop(sub: Sub): void {
    this.subs.delete(sub.channel);
    if (sub.retry) clearTimeout(sub.retry);
    if (channelKind(sub.channel).kind === 'pattern') this.patterns.give(sub.channel);
  }

  /** The shared push bytes, with this subscription's label when the client spelled the verb otherwise. */
  private relabel(sub: Sub, bytes: Buffer): Buffer {
    if (this.mode === 'raw') return bytes;
    const canonical = channelKind(sub.channel).kind === 'pattern' ? 'PSUBSCRIBE' : 'SUBSCRIBE';
    if (sub.label === canonical) return bytes;
    if (this.mode === 'msgpack') return relabelMsgpack(bytes, canonical, sub.label);
    // `{"SUBSCRIBE":…}` → `{"subscribe":…}`: only the key changes.
    return Buffer.concat([Buffer.from(`{${JSON.stringify(sub.label)}`), bytes.subarray(canonical.length + 3)]);
  }

  /** `{"SUBSCRIBE":["subscribe","a",1]}`; in RESP the count is a bulk string, as Webdis sends it. */
  private confirmation(verb: string, word: string, name: string | null, count: number): Buffer {
    if (this.mode === 'raw') return encodeResp(array([bulk(word), bulk(name), bulk(String(count))]));
    return this.encode(verb, array([bulk(word), bulk(name), { type: 'integer', text: String(count) }]));
  }

  /** A reply in this client's wire format. */
  private encode(verb: string, value: RespValue): Buffer {
    if (this.mode === 'json') return Buffer.from(replyJson(verb, value));
    if (this.mode === 'msgpack') return replyMsgpack(verb, value);
    return encodeResp(value);
  }
}
