// Which Redis connection of an ioredis Cluster carries a subscription. ioredis routes SUBSCRIBE to
// one plain subscriber connection and SSUBSCRIBE to one connection per master, and replaces them on
// failovers and topology changes, resubscribing by itself: publications sent in between are lost
// without any event saying which channels were affected. Herald notes the connection each
// subscription went to and, when the connection serving it is no longer that one (or has ended),
// resynchronises the channel so its subscribers recover. ioredis exposes no API for this, so its
// internals are read defensively: when they are not as expected, `servingConnection` returns
// undefined and the engine falls back to coarser signals.
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';

interface ShardedSubscriberLike {
  getInstance(): Redis | null;
}
interface SubscriberGroupLike {
  clusterSlots?: string[][];
  shardedSubscribers?: Map<string, ShardedSubscriberLike>;
}
interface ClusterInternals {
  subscriber?: { getInstance?(): Redis | null };
  shardedSubscribers?: SubscriberGroupLike;
}

/** The slot of a sharded channel (computed once per subscription). */
export function slotOf(channel: string): number {
  return calculateSlot(channel);
}

/**
 * The connection that serves a subscription now: the plain subscriber connection, or the sharded
 * subscriber connection of the master that owns `slot`. Undefined when ioredis does not show it.
 */
export function servingConnection(cluster: Cluster, slot: number | undefined): Redis | undefined {
  const internals = cluster as unknown as ClusterInternals;
  if (slot === undefined) {
    const get = internals.subscriber?.getInstance;
    return typeof get === 'function' ? (get.call(internals.subscriber) ?? undefined) : undefined;
  }
  const group = internals.shardedSubscribers;
  const key = group?.clusterSlots?.[slot]?.[0];
  const sub = key === undefined ? undefined : group?.shardedSubscribers?.get(key);
  return typeof sub?.getInstance === 'function' ? (sub.getInstance() ?? undefined) : undefined;
}

/** True when ioredis shows which connection serves subscriptions (see `servingConnection`). */
export function connectionsVisible(cluster: Cluster, sharded: boolean): boolean {
  const internals = cluster as unknown as ClusterInternals;
  if (sharded) {
    const group = internals.shardedSubscribers;
    return Array.isArray(group?.clusterSlots) && group?.shardedSubscribers instanceof Map;
  }
  return typeof internals.subscriber?.getInstance === 'function';
}

/**
 * What subscriptions depend on, as a list to compare with an earlier one: the slot table the
 * sharded subscribers route by, and every pub/sub connection with its status. An equal list means
 * no subscription can have moved or lost its connection since (the periodic slot refreshes of a
 * steady cluster then cost one short comparison, not a pass over every channel).
 */
export function topologyStamp(cluster: Cluster): unknown[] {
  const internals = cluster as unknown as ClusterInternals;
  const plain = servingConnection(cluster, undefined);
  const stamp: unknown[] = [plain, plain?.status];
  const group = internals.shardedSubscribers;
  if (group) {
    stamp.push(group.clusterSlots);
    for (const [key, sub] of group.shardedSubscribers ?? []) {
      const conn = sub.getInstance();
      stamp.push(key, conn, conn?.status);
    }
  }
  return stamp;
}

/** True when two stamps from `topologyStamp` are the same. */
export function sameStamp(a: readonly unknown[] | undefined, b: readonly unknown[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}
