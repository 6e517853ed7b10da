// Publishing from Node exactly as ws4redis' RedisPublisher does from Django: for each target channel
// (broadcast, groups, users, sessions) `PUBLISH channel message`, then `SETEX channel expire message`
// when the expiry is positive; and `fetch_message`'s GET of the persisted message by audience.
import type { Cluster, Redis } from 'ioredis';
import { channelName, targetChannels, type Audience, type Ws4RedisIdentity } from './channels.js';

/** ws4redis' magic audience member SELF: the identity the publisher was given. */
export const WS4REDIS_SELF: unique symbol = Symbol('ws4redis.SELF');

/** An audience member: a name, or WS4REDIS_SELF. */
export type Ws4RedisMember = string | typeof WS4REDIS_SELF;

/** Options of a Ws4RedisPublisher (the keyword arguments of ws4redis' RedisPublisher plus its settings). */
export interface Ws4RedisPublisherOptions {
  /** The Redis the pages' Herald uses (ws4redis: WS4REDIS_CONNECTION). */
  readonly redis: Redis | Cluster;
  /** The facility: `/ws/<facility>`. Required when any audience is given. */
  readonly facility?: string;
  /** Every socket subscribed with `subscribe-broadcast`. @default false */
  readonly broadcast?: boolean;
  /** @default [] */
  readonly groups?: readonly Ws4RedisMember[];
  /** @default [] */
  readonly users?: readonly Ws4RedisMember[];
  /** Session keys. @default [] */
  readonly sessions?: readonly Ws4RedisMember[];
  /** Who WS4REDIS_SELF stands for (ws4redis: the `request`). */
  readonly identity?: Partial<Ws4RedisIdentity>;
  /** WS4REDIS_PREFIX (Herald: `ws4redis.prefix`). @default "" */
  readonly prefix?: string;
  /** WS4REDIS_EXPIRE in seconds; 0 stores nothing. @default 3600 */
  readonly expire?: number;
  /** WS4REDIS_HEARTBEAT: a message equal to it cannot be published. @default "" */
  readonly heartbeat?: string;
}

/** Publishes to ws4redis sockets through Redis, writing what ws4redis' RedisPublisher writes. */
export class Ws4RedisPublisher {
  /** The channels `publishMessage` writes to, in order. */
  readonly channels: readonly string[];
  private readonly redis: Redis | Cluster;
  private readonly prefix: string;
  private readonly expire: number;
  private readonly heartbeat: string;

  constructor(options: Ws4RedisPublisherOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix ?? '';
    this.expire = checkExpire(options.expire ?? 3600, 'options.expire');
    this.heartbeat = options.heartbeat ?? '';
    const self = options.identity ?? {};
    const expand = (members: readonly Ws4RedisMember[] | undefined, mine: readonly string[]) =>
      (members ?? []).flatMap((m) => (m === WS4REDIS_SELF ? mine : [m]));
    const targets = {
      broadcast: options.broadcast === true,
      groups: expand(options.groups, self.groups ?? []),
      users: expand(options.users, self.user ? [self.user] : []),
      sessions: expand(options.sessions, self.session ? [self.session] : []),
    };
    const any = targets.broadcast || targets.groups.length + targets.users.length + targets.sessions.length > 0;
    if (any && options.facility === undefined) throw new TypeError('Ws4RedisPublisher: options.facility is required with an audience');
    this.channels = any ? targetChannels(this.prefix, options.facility!, targets) : [];
  }

  /**
   * ws4redis' `publish_message`: PUBLISH to each channel, then SETEX with `expire` seconds (the
   * publisher's expiry when omitted) when positive. Resolves with how many Redis subscribers (Herald
   * nodes and other clients) received it, summed over the channels.
   */
  async publishMessage(message: string | Buffer, expire?: number): Promise<number> {
    const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
    if (this.heartbeat && bytes.equals(Buffer.from(this.heartbeat))) {
      // ws4redis' RedisMessage turns the heartbeat into None, which publish_message refuses.
      throw new TypeError('Ws4RedisPublisher: the message equals the heartbeat and cannot be published');
    }
    const ttl = expire === undefined ? this.expire : checkExpire(expire, 'expire');
    let receivers = 0;
    for (const channel of this.channels) {
      receivers += await this.redis.publish(channel, bytes);
      if (ttl > 0) await this.redis.setex(channel, ttl, bytes);
    }
    return receivers;
  }

  /**
   * ws4redis' `fetch_message`: the persisted message for that identity's session, then user, then
   * groups, then broadcast (only the `audience` asked for, or all with `any`); the first non-empty
   * one, or null.
   */
  async fetchMessage(identity: Partial<Ws4RedisIdentity> | null, facility: string, audience: Audience | 'any' = 'any'): Promise<Buffer | null> {
    const want = (a: Audience) => audience === 'any' || audience === a;
    const names: string[] = [];
    if (want('session') && identity?.session) names.push(channelName(this.prefix, facility, 'session', identity.session));
    if (want('user') && identity?.user) names.push(channelName(this.prefix, facility, 'user', identity.user));
    if (want('group') && identity?.user) for (const g of identity.groups ?? []) names.push(channelName(this.prefix, facility, 'group', g));
    if (want('broadcast')) names.push(channelName(this.prefix, facility, 'broadcast'));
    for (const name of names) {
      const value = await this.redis.getBuffer(name);
      if (value && value.length > 0) return value;
    }
    return null;
  }
}

function checkExpire(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`Ws4RedisPublisher: ${what} must be a whole number of seconds >= 0, got ${value}`);
  return value;
}
