// Who is here, on Redis: the clients present in each channel, and the live nodes.
// Per channel, a hash of the clients present (client id -> info) and a sorted set
// of the same ids scored by when each entry expires, both under the channel's hash tag, so a Redis
// Cluster keeps them on the channel's shard. The library's functions (redis-functions.ts) add, remove
// and read them atomically; a read drops the expired entries first, so a dead node's clients go once
// their TTL has passed. The nodes announce themselves the same way, in one sorted set and hash.
import type { Cluster, Redis } from 'ioredis';
import { type ClientInfo, type NodeInfo, type PresenceStats, type PresenceStore } from './engine.js';
import { decodeClientInfo, encodeClientInfo, parseKeepingInfo } from './envelope.js';
import type { FunctionLibrary } from './redis-functions.js';
import { channelNames, nodeKeys } from './redis-names.js';

/** The Redis engine's presence (see PresenceStore) and list of live nodes. */
export class RedisPresence implements PresenceStore {
  /** `run` turns a failed command into the engine's temporary error. */
  constructor(
    private readonly prefix: string,
    private readonly functions: FunctionLibrary,
    private readonly cmd: Redis | Cluster,
    private readonly run: <T>(op: () => Promise<T>) => Promise<T>,
  ) {}

  /** Announces a node as alive for `ttlMs` (and forgets the nodes whose announcement expired). */
  async announce(info: NodeInfo, ttlMs: number): Promise<void> {
    const keys = nodeKeys(this.prefix);
    const now = Date.now();
    await this.run(() =>
      this.cmd
        .multi()
        .zadd(keys.expiries, now + ttlMs, info.uid)
        .hset(keys.info, info.uid, JSON.stringify(info))
        .zremrangebyscore(keys.expiries, '-inf', now)
        .exec(),
    );
  }

  /** Forgets a node's announcement (it is stopping). */
  async withdraw(uid: string): Promise<void> {
    const keys = nodeKeys(this.prefix);
    await this.run(() => this.cmd.multi().zrem(keys.expiries, uid).hdel(keys.info, uid).exec());
  }

  /** Every live node's last announcement. */
  async nodes(): Promise<NodeInfo[]> {
    const keys = nodeKeys(this.prefix);
    const uids = await this.run(() => this.cmd.zrangebyscore(keys.expiries, Date.now(), '+inf'));
    if (uids.length === 0) return [];
    const infos = await this.run(() => this.cmd.hmget(keys.info, ...uids));
    return infos.filter((x): x is string => typeof x === 'string').map((x) => JSON.parse(x) as NodeInfo);
  }

  async addPresence(channel: string, clients: readonly ClientInfo[], ttlMs: number): Promise<void> {
    if (clients.length === 0) return;
    const args = [String(ttlMs)];
    for (const info of clients) args.push(info.client, encodeClientInfo(info));
    await this.functions.call('herald_presence_add', this.keys(channel), args);
  }

  async removePresence(channel: string, clientId: string): Promise<void> {
    await this.functions.call('herald_presence_remove', this.keys(channel), [clientId]);
  }

  async presence(channel: string): Promise<Map<string, ClientInfo>> {
    const reply = (await this.functions.call('herald_presence', this.keys(channel), [])) as Buffer[];
    const out = new Map<string, ClientInfo>();
    for (let i = 0; i + 1 < reply.length; i += 2) {
      let entry: unknown;
      try {
        entry = parseKeepingInfo(reply[i + 1]!.toString());
      } catch {
        continue; // not an entry Herald wrote: left out
      }
      if (entry && typeof entry === 'object') out.set(reply[i]!.toString(), decodeClientInfo(entry as Record<string, unknown>));
    }
    return out;
  }

  async presenceStats(channel: string): Promise<PresenceStats> {
    const [numClients, numUsers] = (await this.functions.call('herald_presence_stats', this.keys(channel), [])) as [number, number];
    return { numClients: Number(numClients), numUsers: Number(numUsers) };
  }

  private keys(channel: string): string[] {
    const names = channelNames(this.prefix, channel);
    return [names.presenceInfo, names.presenceExpiry];
  }
}
