// Who is here, on Redis: the clients present in each channel, and the live nodes.
// Per channel, a hash of the clients present (client id -> info) and a sorted set
// of the same ids scored by when each entry expires, both under the channel's hash tag, so a Redis
// Cluster keeps them on the channel's shard. The library's functions (redis-functions.ts) add, remove
// and read them atomically; a read drops the expired entries first, so a dead node's clients go once
// their TTL has passed. The nodes announce themselves the same way, with the same functions (and,
// during a rolling upgrade, under the names earlier builds read too).
import type { Cluster, Redis } from 'ioredis';
import { type ClientInfo, type NodeInfo, type PresenceStats, type PresenceStore } from './engine.js';
import { decodeClientInfo, encodeClientInfo, parseKeepingInfo } from './envelope.js';
import type { FunctionLibrary } from './redis-functions.js';
import { channelNames, earlierNodeKeys, nodeKeys } from './redis-names.js';

/** The Redis engine's presence (see PresenceStore) and list of live nodes. */
export class RedisPresence implements PresenceStore {
  /** `cmd` only for the earlier builds' node keys; everything else goes through the function library. */
  constructor(
    private readonly prefix: string,
    private readonly functions: FunctionLibrary,
    private readonly cmd: Redis | Cluster,
  ) {}

  /** The announcement under way (settled): the next one, and a withdrawal, wait for it. */
  private announcing: Promise<void> = Promise.resolve();
  /** Nodes withdrawn (stopping): not announced again. */
  private readonly withdrawn = new Set<string>();

  /**
   * Announces a node as alive for `ttlMs`. The live nodes are kept as a channel's presence is (an
   * info hash and an expiry set, the same functions): a read drops the expired ones. Announcements
   * are made one at a time; a withdrawn node is not announced again.
   */
  announce(info: NodeInfo, ttlMs: number): Promise<void> {
    if (this.withdrawn.has(info.uid)) return Promise.resolve();
    const announced = this.announcing.then(async () => {
      if (this.withdrawn.has(info.uid)) return;
      await this.functions.call('herald_presence_add', this.nodeKeys(), [String(ttlMs), info.uid, JSON.stringify(info)]);
      await this.announceToEarlier(info, ttlMs);
    });
    this.announcing = announced.catch(() => undefined);
    return announced;
  }

  /**
   * While a node of an earlier build lives (announced under earlierNodeKeys alone), announces this
   * one there too, so that it sees this one (`info`, `/emulation`'s node lookup); once none does,
   * removes those keys, whose hash's name is also the history key of a channel named `nodes`. Best
   * effort: a failure (that channel's history holding the name) is not this node's announcement's.
   */
  private async announceToEarlier(info: NodeInfo, ttlMs: number): Promise<void> {
    const earlier = earlierNodeKeys(this.prefix);
    // Earlier builds score their entries by their own clock.
    const now = Date.now();
    try {
      const listed = await this.cmd.zrangebyscore(earlier.expiries, now, '+inf');
      const current = listed.length > 0 ? new Set(await this.cmd.zrange(nodeKeys(this.prefix).expiries, 0, -1)) : new Set<string>();
      if (listed.some((uid) => uid !== info.uid && !current.has(uid))) {
        await this.cmd
          .multi()
          .zadd(earlier.expiries, now + ttlMs, info.uid)
          .hset(earlier.info, info.uid, JSON.stringify(info))
          .zremrangebyscore(earlier.expiries, '-inf', now)
          .exec();
      } else {
        await this.cmd.eval(DROP_EARLIER_NODE_KEYS, 2, earlier.expiries, earlier.info);
      }
    } catch {
      // Tried again at the next announcement.
    }
  }

  /** Forgets a node's announcement (it is stopping), after the one under way if any. */
  async withdraw(uid: string): Promise<void> {
    this.withdrawn.add(uid);
    await this.announcing;
    const earlier = earlierNodeKeys(this.prefix);
    await this.functions.call('herald_presence_remove', this.nodeKeys(), [uid]);
    await this.cmd
      .multi()
      .zrem(earlier.expiries, uid)
      .hdel(earlier.info, uid)
      .exec()
      .catch(() => undefined);
  }

  /** Every live node's last announcement: this build's, and those of earlier builds' nodes (a rolling upgrade). */
  async nodes(): Promise<NodeInfo[]> {
    const reply = (await this.functions.call('herald_presence', this.nodeKeys(), [])) as Buffer[];
    const uids: string[] = [];
    const infos: string[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      uids.push(reply[i]!.toString());
      infos.push(reply[i + 1]!.toString());
    }
    const out = parseInfos(infos);
    const earlier = earlierNodeKeys(this.prefix);
    try {
      const known = new Set(uids);
      const older = (await this.cmd.zrangebyscore(earlier.expiries, Date.now(), '+inf')).filter((uid) => !known.has(uid));
      if (older.length > 0) out.push(...parseInfos(await this.cmd.hmget(earlier.info, ...older)));
    } catch {
      // None readable there (the name is a channel's history, or nothing): this build's nodes only.
    }
    return out;
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

  /** The live nodes' keys in the presence functions' order: info hash, expiry set. */
  private nodeKeys(): string[] {
    const keys = nodeKeys(this.prefix);
    return [keys.info, keys.expiries];
  }
}

function parseInfos(infos: ReadonlyArray<string | null>): NodeInfo[] {
  return infos.filter((x): x is string => typeof x === 'string').map((x) => JSON.parse(x) as NodeInfo);
}

/** Removes earlier builds' node keys, each only when it holds what they wrote (the hash's name may be a channel's history list). */
const DROP_EARLIER_NODE_KEYS = `
if redis.call('TYPE', KEYS[1]).ok == 'zset' then redis.call('DEL', KEYS[1]) end
if redis.call('TYPE', KEYS[2]).ok == 'hash' then redis.call('DEL', KEYS[2]) end
return 0`;
