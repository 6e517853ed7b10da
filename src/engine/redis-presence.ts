// Presence on Redis: per channel, a hash of the clients present (client id -> info) and a sorted set
// of the same ids scored by when each entry expires, both under the channel's hash tag, so a Redis
// Cluster keeps them on the channel's shard. The library's functions (redis-functions.ts) add, remove
// and read them atomically; a read drops the expired entries first, so a dead node's clients go once
// their TTL has passed.
import { countPresence, type ClientInfo, type PresenceStats, type PresenceStore } from './engine.js';
import { decodeClientInfo, encodeClientInfo, parseKeepingInfo } from './envelope.js';
import type { FunctionLibrary } from './redis-functions.js';
import { channelNames } from './redis-names.js';

/** The Redis engine's presence (see PresenceStore). */
export class RedisPresence implements PresenceStore {
  constructor(
    private readonly prefix: string,
    private readonly functions: FunctionLibrary,
  ) {}

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
    return countPresence((await this.presence(channel)).values());
  }

  private keys(channel: string): string[] {
    const names = channelNames(this.prefix, channel);
    return [names.presenceInfo, names.presenceExpiry];
  }
}
