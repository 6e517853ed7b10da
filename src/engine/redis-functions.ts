// The Redis function library Herald installs (FUNCTION LOAD): atomic publish-with-history and
// history reads. Any Redis client can call `herald_publish` to publish into a Herald channel with
// history (see docs/operations.md); Herald itself calls both through FCALL.
//
// herald_publish  KEYS: history list, meta hash [, idempotency key]
//                 ARGV: pubsub channel, data, history size (0 = none), history TTL ms, meta TTL ms,
//                       epoch for a new stream ('' = make one), header extra JSON fragment ('' = none),
//                       time ms ('' = server time), publish command ('publish' | 'spublish'),
//                       idempotency TTL ms [, version, version epoch]
//                 returns {offset, epoch, suppressed (0|1)}; a version not above the stream's last
//                 (in the same version epoch, or any when '') is suppressed: {top, epoch, 1}
// herald_history  KEYS: history list, meta hash
//                 ARGV: epoch for a new stream, meta TTL ms, since offset (-1 = none), limit (-1 = all), reverse (0|1)
//                 returns {top offset, epoch, envelope...} (oldest first; the caller reverses)
// (The presence functions keep the live nodes too: their info hash and expiry zset.)
// herald_presence_add     KEYS: presence hash, presence expiry zset
//                         ARGV: TTL ms, then client id and info for each client; returns 0
// herald_presence_remove  KEYS: presence hash, presence expiry zset; ARGV: client id; returns 0
// herald_presence         KEYS: presence hash, presence expiry zset; drops the expired entries and
//                         returns the rest as HGETALL does (client id, info, ...)
// herald_presence_stats   KEYS: presence hash, presence expiry zset; drops the expired entries and
//                         returns {clients, distinct users} (counted in Redis: nothing else is sent)
import { Cluster, type Redis } from 'ioredis';

/** Bumped when the library changes, so nodes reload it. */
export const FUNCTION_LIBRARY_VERSION = 5;

/** The library source. */
export const FUNCTION_LIBRARY = `#!lua name=herald

local LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'

local function new_epoch()
  local t = redis.call('TIME')
  local n = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local out = ''
  for _ = 1, 8 do
    local k = n % 52
    out = out .. string.sub(LETTERS, k + 1, k + 1)
    n = math.floor(n / 52)
  end
  return out
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The stream's epoch, creating the meta hash (with a fresh epoch) when it is missing.
local function ensure_meta(meta, candidate, meta_ttl)
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    if candidate == nil or candidate == '' then candidate = new_epoch() end
    epoch = candidate
    redis.call('HSET', meta, 'e', epoch, 's', 0)
    if meta_ttl > 0 then redis.call('PEXPIRE', meta, meta_ttl) end
  end
  return epoch
end

local function herald_publish(keys, args)
  local hist, meta, idem = keys[1], keys[2], keys[3]
  local channel, data = args[1], args[2]
  local size = tonumber(args[3] or '0') or 0
  local ttl = tonumber(args[4] or '0') or 0
  local meta_ttl = tonumber(args[5] or '2592000000') or 2592000000
  local extra = args[7] or ''
  local time = tonumber(args[8] or '') or now_ms()
  local cmd = args[9]
  if cmd == nil or cmd == '' then cmd = 'publish' end
  local idem_ttl = tonumber(args[10] or '300000') or 300000
  if idem then
    local seen = redis.call('GET', idem)
    if seen then
      local sep = string.find(seen, ':', 1, true)
      return {tonumber(string.sub(seen, 1, sep - 1)), string.sub(seen, sep + 1), 1}
    end
  end
  local version = tonumber(args[11] or '0') or 0
  local version_epoch = args[12] or ''
  if size > 0 and version > 0 then
    local top_version = tonumber(redis.call('HGET', meta, 'v') or '0') or 0
    if (version_epoch == '' or version_epoch == (redis.call('HGET', meta, 've') or '')) and version <= top_version then
      -- The stream's real position, its epoch made first if the meta lacks one (as a read would).
      local e = ensure_meta(meta, args[6], meta_ttl)
      return {tonumber(redis.call('HGET', meta, 's') or '0'), e, 1}
    end
  end
  local offset, epoch = 0, ''
  if size > 0 then
    if ttl > meta_ttl then meta_ttl = ttl end
    epoch = ensure_meta(meta, args[6], meta_ttl)
    offset = redis.call('HINCRBY', meta, 's', 1)
    if version > 0 then redis.call('HSET', meta, 'v', args[11], 've', version_epoch) end
  end
  local msg = string.format('{"o":%d,"e":"%s","t":%d%s}\\n', offset, epoch, time, extra) .. data
  if size > 0 then
    redis.call('RPUSH', hist, msg)
    redis.call('LTRIM', hist, -size, -1)
    if ttl > 0 then redis.call('PEXPIRE', hist, ttl) end
    if meta_ttl > 0 then redis.call('PEXPIRE', meta, meta_ttl) end
  end
  redis.call(cmd, channel, msg)
  if idem then redis.call('SET', idem, offset .. ':' .. epoch, 'PX', idem_ttl) end
  return {offset, epoch, 0}
end

local function herald_history(keys, args)
  local hist, meta = keys[1], keys[2]
  local epoch = ensure_meta(meta, args[1], tonumber(args[2] or '0') or 0)
  local top = tonumber(redis.call('HGET', meta, 's') or '0')
  local since = tonumber(args[3] or '-1') or -1
  local limit = tonumber(args[4] or '-1') or -1
  local reverse = args[5] == '1'
  local res = {top, epoch}
  if limit == 0 then return res end
  local n = redis.call('LLEN', hist)
  if n == 0 then return res end
  local first = top - n + 1
  local s, e
  if not reverse then
    s = 0
    if since >= 0 then s = since + 1 - first end
    if s < 0 then s = 0 end
    if s > n - 1 then return res end
    e = n - 1
    if limit > 0 and s + limit - 1 < e then e = s + limit - 1 end
  else
    e = n - 1
    if since >= 0 then e = since - 1 - first end
    if e > n - 1 then e = n - 1 end
    if e < 0 then return res end
    s = 0
    if limit > 0 and e - limit + 1 > 0 then s = e - limit + 1 end
  end
  local items = redis.call('LRANGE', hist, s, e)
  for i = 1, #items do res[#res + 1] = items[i] end
  return res
end

-- Keys live as long as their longest entry: an add never shortens them (another node may have
-- added its clients with a longer TTL).
local function extend_ttl(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end

local function herald_presence_add(keys, args)
  local info, expiry = keys[1], keys[2]
  local ttl = tonumber(args[1] or '0') or 0
  if ttl <= 0 then return redis.error_reply('ERR presence TTL must be > 0') end
  if #args < 3 or #args % 2 == 0 then return redis.error_reply('ERR expected a TTL, then a client id and an info for each client') end
  local expire_at = now_ms() + ttl
  for i = 2, #args - 1, 2 do
    redis.call('ZADD', expiry, expire_at, args[i])
    redis.call('HSET', info, args[i], args[i + 1])
  end
  extend_ttl(info, ttl)
  extend_ttl(expiry, ttl)
  return 0
end

local function herald_presence_remove(keys, args)
  if args[1] == nil then return redis.error_reply('ERR expected a client id') end
  redis.call('HDEL', keys[1], args[1])
  redis.call('ZREM', keys[2], args[1])
  return 0
end

local function drop_expired_presence(info, expiry)
  local expired = redis.call('ZRANGEBYSCORE', expiry, '-inf', now_ms())
  for i = 1, #expired do
    redis.call('HDEL', info, expired[i])
    redis.call('ZREM', expiry, expired[i])
  end
end

local function herald_presence(keys, args)
  drop_expired_presence(keys[1], keys[2])
  return redis.call('HGETALL', keys[1])
end

-- Distinct user ids as the memory engine counts them (memory.ts presenceStats): anonymous clients
-- count as one user.
local function herald_presence_stats(keys, args)
  drop_expired_presence(keys[1], keys[2])
  local entries = redis.call('HVALS', keys[1])
  local users, num_users = {}, 0
  for i = 1, #entries do
    local ok, entry = pcall(cjson.decode, entries[i])
    if ok and type(entry) == 'table' then
      local user = tostring(entry['u'] or '')
      if not users[user] then
        users[user] = true
        num_users = num_users + 1
      end
    end
  end
  return {#entries, num_users}
end

redis.register_function('herald_publish', herald_publish)
redis.register_function('herald_history', herald_history)
redis.register_function('herald_presence_add', herald_presence_add)
redis.register_function('herald_presence_remove', herald_presence_remove)
redis.register_function('herald_presence', herald_presence)
redis.register_function('herald_presence_stats', herald_presence_stats)
redis.register_function{function_name = 'herald_version', callback = function() return ${FUNCTION_LIBRARY_VERSION} end, flags = {'no-writes'}}
`;

/**
 * The library on a Redis, or on every master of a cluster: installed when missing or older than this
 * version, and called through FCALL.
 */
export class FunctionLibrary {
  private loaded: Promise<void> | undefined;

  /** `run` turns a failed command into the engine's temporary error. */
  constructor(
    private readonly cmd: Redis | Cluster,
    private readonly run: <T>(op: () => Promise<T>) => Promise<T>,
  ) {}

  /** Forgets that the library was installed: the connection may now reach a Redis without it. */
  reset(): void {
    this.loaded = undefined;
  }

  /** Installs the library where it is missing, once until reset. */
  ensure(): Promise<void> {
    if (!this.loaded) {
      this.loaded = this.load().catch((err) => {
        this.loaded = undefined;
        throw err;
      });
    }
    return this.loaded;
  }

  /**
   * Checks that every master still holds this library or a newer one, and installs it where not:
   * after Redis lost its functions, a node of an earlier build may have installed its older library
   * first, whose functions answer this node's calls (the `version` arguments ignored) without the
   * "not found" that would make it install its own.
   */
  recheck(): Promise<void> {
    return this.load();
  }

  /** Calls one of the library's functions. */
  async call(fn: string, keys: string[], args: Array<string | Buffer>): Promise<unknown> {
    await this.ensure();
    try {
      return await this.run(() => this.cmd.callBuffer('FCALL', fn, keys.length, ...keys, ...args));
    } catch (err) {
      if (!/Function not found/i.test(String((err as Error).message))) throw err;
      // Redis restarted without persistence (or a new master): install the library again.
      this.reset();
      await this.ensure();
      return this.run(() => this.cmd.callBuffer('FCALL', fn, keys.length, ...keys, ...args));
    }
  }

  private async load(): Promise<void> {
    const targets: Redis[] = this.cmd instanceof Cluster ? this.cmd.nodes('master') : [this.cmd];
    await Promise.all(
      targets.map(async (node) => {
        const version = await node.call('FCALL', 'herald_version', 0).catch(() => 0);
        // A newer library (a newer node's, during a rolling upgrade) has every function this one calls.
        if (Number(version) >= FUNCTION_LIBRARY_VERSION) return;
        await this.run(() => node.call('FUNCTION', 'LOAD', 'REPLACE', FUNCTION_LIBRARY));
      }),
    );
  }
}
