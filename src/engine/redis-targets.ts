// The Redis engine's subscriptions: what it wants Redis to hold for this node (a target per Redis
// channel or pattern), the subscribes waiting to be sent, and the time Redis has to answer them.
import type { Redis } from 'ioredis';

/** How a channel is subscribed to: sharded (native channels in cluster mode), plain, or by pattern. */
export type Mode = 'shard' | 'plain' | 'pattern';

/** A Redis subscription this node wants (kept in `wanted[mode]` by name, as messages arrive). */
export interface Target {
  /** The engine channel (what the hub knows). */
  readonly channel: string;
  readonly kind: 'native' | 'raw' | 'pattern';
  readonly mode: Mode;
  /** The Redis channel or pattern. */
  readonly name: string;
  /** The cluster hash slot of a sharded channel. */
  readonly slot?: number;
  /**
   * Redis confirmed it, on this cluster connection (undefined outside a cluster), so a replaced or
   * lost connection tells which channels it took with it.
   */
  held: boolean;
  heldOn: Redis | undefined;
  /**
   * An earlier SUBSCRIBE of this name, sent and failed (unanswered in time), was left out of its
   * UNSUBSCRIBE because this target wanted the name again: Redis may still run it. Should this
   * target's own subscribe fail, even unsent, it is taken back.
   */
  owed?: boolean;
}

export interface Pending {
  readonly target: Target;
  readonly waiters: Array<{ resolve: () => void; reject: (e: Error) => void }>;
}

/**
 * How long a SUBSCRIBE or UNSUBSCRIBE may wait for Redis's answer. Well under the SDKs' command
 * timeout (centrifuge-js: 5 s), which closes the whole connection, not only the subscription: a
 * subscribe Redis does not take is answered error 100 (temporary) in time for the client to retry it.
 */
export const SUBSCRIBE_TIMEOUT_MS = 2_000;

/**
 * How long a pub/sub connection that left an (UN)SUBSCRIBE unanswered for SUBSCRIBE_TIMEOUT_MS is
 * taken as not answering (unless it answers meanwhile): subscribes that would go through it fail at
 * once instead of each waiting out the timeout. A native client's commands are answered in order, so
 * with several channels on a stopped Redis, waiting out the timeout for each would answer the last
 * one past the SDK's timeout. Once it is over, the next subscribe tries the connection again.
 */
export const SILENT_MS = 3_000;

/** Redis left a (un)subscribe unanswered for SUBSCRIBE_TIMEOUT_MS. */
export class NoAnswer extends Error {
  constructor() {
    super('timed out');
  }
}

/** A (un)subscribe's answer, or a rejection (NoAnswer) once SUBSCRIBE_TIMEOUT_MS have passed without one. */
export function withTimeout<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new NoAnswer()), SUBSCRIBE_TIMEOUT_MS)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
