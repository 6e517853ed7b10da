// Redis names of a Herald channel: every key and the pub/sub channel of one Herald channel share one
// hash tag, so in a Redis Cluster they live in one slot (one shard), and the publish function can
// touch them atomically. Documented for other languages in docs/operations.md.

/** The Redis keys and pub/sub channel of one Herald channel. */
export interface ChannelNames {
  /** The pub/sub channel publications travel on. */
  readonly pubsub: string;
  /** The list holding the newest publications (history). */
  readonly history: string;
  /** The hash holding the stream's top offset (`s`) and epoch (`e`). */
  readonly meta: string;
  /** The hash of the clients present: client id -> their info (envelope.ts, encodeClientInfo). */
  readonly presenceInfo: string;
  /** The sorted set of the clients present: client id, scored by when the entry expires (ms). */
  readonly presenceExpiry: string;
}

/** Names for a channel under a prefix: `<prefix>{<channel>}.p`, `.h`, `.m`, `.pi`, `.pz`. */
export function channelNames(prefix: string, channel: string): ChannelNames {
  const root = `${prefix}{${channel}}`;
  return { pubsub: `${root}.p`, history: `${root}.h`, meta: `${root}.m`, presenceInfo: `${root}.pi`, presenceExpiry: `${root}.pz` };
}

/**
 * The key remembering an idempotent publish (same slot as the channel): `<prefix>{<channel>}.i.<key>`,
 * the name every version and docs/operations.md use. A key holding `}` is base64url-encoded under
 * `.j.` instead: written as given it could spell another channel's key (`x}.h` on channel `c` is the
 * history of channel `c}.i.x`); a key without one cannot end as a channel's key does.
 */
export function idempotencyKey(prefix: string, channel: string, key: string): string {
  if (key.includes('}')) return `${prefix}{${channel}}.j.${Buffer.from(key, 'utf8').toString('base64url')}`;
  return `${prefix}{${channel}}.i.${key}`;
}

/**
 * The channel every node listens on for cluster-wide control messages (API calls on connections), or,
 * with `node`, the one that node alone listens on (commands of its HTTP streaming sessions).
 */
export function controlChannel(prefix: string, node?: string): string {
  return node === undefined ? `${prefix}.control` : `${prefix}.control.${node}`;
}

/** True for a Redis name under `prefix` that Herald uses itself: `<prefix>{…}` or `<prefix>.…`. */
export function isReservedName(prefix: string, name: string): boolean {
  const next = name.charCodeAt(prefix.length);
  return (next === 0x7b || next === 0x2e) && name.startsWith(prefix);
}

/**
 * The sorted set of live nodes (score: expiry in ms) and the hash of their info: `<prefix>.{nodes}.z`
 * and `.h`, outside the channels' `<prefix>{…}` names, with one hash tag so a cluster keeps both on
 * one shard.
 */
export function nodeKeys(prefix: string): { readonly expiries: string; readonly info: string } {
  return { expiries: `${prefix}.{nodes}.z`, info: `${prefix}.{nodes}.h` };
}

/**
 * Where earlier builds announce their nodes: `<prefix>{nodes}.z` and `.h`, the second also the
 * history key of a channel named `nodes`. Read, and written while such a node lives, so that nodes
 * of both see each other during a rolling upgrade; removed once none does (redis-presence.ts).
 */
export function earlierNodeKeys(prefix: string): { readonly expiries: string; readonly info: string } {
  return { expiries: `${prefix}{nodes}.z`, info: `${prefix}{nodes}.h` };
}
