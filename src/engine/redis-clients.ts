// The Redis engine's connections: one for commands and one for pub/sub, to one Redis or to a Redis
// Cluster, with the failure behaviour the engine relies on, and how their failures read.
import { Cluster, Redis, ReplyError, type ClusterNode, type RedisOptions } from 'ioredis';
import { HeraldError } from '../errors.js';

/** Where the engine connects: one Redis by URL, or a cluster by its seeds. */
export interface RedisWhere {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://…` for one Redis. */
  readonly url?: string;
  /** Seed nodes (`host:port` or URLs) of a Redis Cluster; when given, `url` is not used. */
  readonly cluster?: readonly string[];
  /** How long one command may take before it fails. */
  readonly commandTimeoutMs: number;
  /** Use sharded pub/sub in cluster mode (Redis 7+). */
  readonly shardedPubsub: boolean;
}

/**
 * The command and pub/sub clients (not connected yet: lazyConnect). While Redis is away, commands
 * fail fast with a clear error instead of queueing; the pub/sub client does not resubscribe by
 * itself: when its connection drops, every subscriber resyncs and subscribes again (see the engine's
 * onSubscriberLost), so channels left meanwhile stay left.
 */
export function createClients(options: RedisWhere): { cmd: Redis | Cluster; sub: Redis | Cluster } {
  const common: RedisOptions = {
    commandTimeout: options.commandTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
    lazyConnect: true,
  };
  if (options.cluster && options.cluster.length > 0) {
    const seeds = options.cluster.map(parseSeed);
    const clusterOpts = {
      redisOptions: { ...common, ...authOf(options.cluster[0]!) },
      enableOfflineQueue: false,
      lazyConnect: true,
      clusterRetryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
      // No `slotsRefreshInterval`: the periodic slot refresh is the engine's (see its start).
    };
    return {
      cmd: new Cluster(seeds, clusterOpts),
      sub: new Cluster(seeds, {
        ...clusterOpts,
        redisOptions: { ...clusterOpts.redisOptions, autoResubscribe: false },
        shardedSubscribers: options.shardedPubsub,
        // A (S)SUBSCRIBE whose connection is closed (its master is down) or answered CLUSTERDOWN
        // fails at once. ioredis's default retries it every 100 ms up to maxRedirections (16) times:
        // about 2 s per channel before "Too many Cluster redirections", and a native client's
        // subscribes are answered one after another, so its fifth channel waited 10 s and the SDK
        // (5 s command timeout) closed the whole connection. The client retries with its backoff.
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
      }),
    };
  }
  if (!options.url) throw new HeraldError('HERALD_ERR_CONFIG', 'the redis engine needs engine.redis.url or engine.redis.cluster');
  return { cmd: new Redis(options.url, common), sub: new Redis(options.url, { ...common, autoResubscribe: false }) };
}

/** A cluster seed, `host:port` or a URL, as ioredis takes it. */
function parseSeed(seed: string): ClusterNode {
  if (/^rediss?:\/\//.test(seed)) {
    const u = new URL(seed);
    return { host: u.hostname, port: Number(u.port || 6379) };
  }
  const i = seed.lastIndexOf(':');
  return { host: seed.slice(0, i), port: Number(seed.slice(i + 1)) };
}

/** The credentials and TLS of a seed given as a URL (the cluster's nodes are reached alike). */
function authOf(seed: string): RedisOptions {
  if (!/^rediss?:\/\//.test(seed)) return {};
  const u = new URL(seed);
  const out: RedisOptions = {};
  if (u.username) out.username = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') out.tls = {};
  return out;
}

/** A Redis URL as it may be logged: its password hidden. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * Gathers the commands sent together into one write per connection: before a command is sent, the
 * command connection's sockets (every master's in a cluster) are corked, and they are uncorked on
 * the next tick (process.nextTick), once the code that sent it, or the batch of promise continuations
 * it ran in, is done. Without it each command is a write of its own, and each write wakes Redis: a
 * broadcast to 100 channels was 100 writes, and a client leaving 10,000 presence channels (a removal
 * and a leave publication each) held the event loop 0.74–1.00 s, against 0.53–0.71 s gathered. Uncorking
 * at the end of the loop's turn instead (setImmediate) gathers more, but holds every command back
 * behind the rest of the turn's events: an API publication's round trip was 15% slower at p50 and
 * twice as slow at p99.
 */
export class TickWrites {
  private corked: Array<{ uncork(): void }> = [];
  private scheduled = false;

  constructor(private readonly client: Redis | Cluster) {}

  /** Holds the commands sent from now until the next tick (cheap once holding). */
  hold(): void {
    if (this.scheduled) return;
    const conns = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    for (const conn of conns) {
      // A connection not ready writes nothing: its commands fail at once (no offline queue).
      const stream = conn.status === 'ready' ? conn.stream : undefined;
      if (!stream) continue;
      stream.cork();
      this.corked.push(stream);
    }
    if (this.corked.length === 0) return;
    this.scheduled = true;
    process.nextTick(this.release);
  }

  /** Uncorks what `hold` corked (a socket replaced meanwhile is uncorked all the same, harmlessly). */
  private readonly release = (): void => {
    this.scheduled = false;
    const corked = this.corked;
    this.corked = [];
    for (const stream of corked) stream.uncork();
  };
}

/** Redis's replies that mean it cannot serve for now (loading, failing over, busy, out of memory): an outage, not a refusal. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|READONLY|MASTERDOWN|NOREPLICAS|MISCONF|OOM)\b/;

/**
 * Runs a command: a connection failure or a reply saying Redis cannot serve for now becomes one clear
 * temporary engine error (HERALD_ERR_ENGINE); Redis refusing the command itself (WRONGTYPE on a key
 * something else wrote, a script error) is not an outage, and is an error of its own.
 */
export async function runRedis<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof ReplyError && !TRANSIENT_REPLY.test((err as Error).message)) {
      throw new Error(`redis refused the command: ${(err as Error).message}`, { cause: err });
    }
    throw new HeraldError('HERALD_ERR_ENGINE', `redis unavailable: ${(err as Error).message}`, { cause: err });
  }
}
