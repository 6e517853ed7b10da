// Redis channel names exactly as ws4redis writes them. The persisted message of a channel is stored
// under the channel's own name, so the same names serve PUBLISH, SUBSCRIBE, SET and GET.
import type { Ws4RedisFlag } from '../../config/schema.js';

/** Who a ws4redis message is for. */
export type Audience = 'broadcast' | 'group' | 'user' | 'session';

/** Who a connection (or a request, for the publisher's `fetchMessage`) is. */
export interface Ws4RedisIdentity {
  /** The user name; null for an anonymous connection. */
  readonly user: string | null;
  /** The groups the user is in. */
  readonly groups: readonly string[];
  /** The session key; null when there is none. */
  readonly session: string | null;
}

/** The identity of a connection nobody vouched for. */
export const ANONYMOUS: Ws4RedisIdentity = Object.freeze({ user: null, groups: Object.freeze([]) as readonly string[], session: null });

/** Whom a set of channels addresses: the arguments of ws4redis' `_get_message_channels`. */
export interface Targets {
  readonly broadcast?: boolean;
  readonly groups?: readonly string[];
  readonly users?: readonly string[];
  readonly sessions?: readonly string[];
}

/** `WS4REDIS_PREFIX` as it starts a name: `"P:"`, or nothing when the prefix is empty. */
export function namePrefix(prefix: string): string {
  return prefix ? `${prefix}:` : '';
}

/** True for a name of this prefix's ws4redis channels (any facility and member). */
export function isWs4RedisName(prefix: string, name: string): boolean {
  const p = namePrefix(prefix);
  if (!name.startsWith(p)) return false;
  const rest = name.slice(p.length);
  return rest.startsWith('broadcast:') || rest.startsWith('group:') || rest.startsWith('user:') || rest.startsWith('session:');
}

/** The channel of one audience member: `P:broadcast:f`, `P:group:g:f`, `P:user:u:f`, `P:session:s:f`. */
export function channelName(prefix: string, facility: string, audience: Audience, member = ''): string {
  const p = namePrefix(prefix);
  return audience === 'broadcast' ? `${p}broadcast:${facility}` : `${p}${audience}:${member}:${facility}`;
}

/** The channels of some targets, in ws4redis' order (broadcast, groups, users, sessions), each once. */
export function targetChannels(prefix: string, facility: string, targets: Targets): string[] {
  const out: string[] = [];
  if (targets.broadcast) out.push(channelName(prefix, facility, 'broadcast'));
  for (const g of targets.groups ?? []) out.push(channelName(prefix, facility, 'group', g));
  for (const u of targets.users ?? []) out.push(channelName(prefix, facility, 'user', u));
  for (const s of targets.sessions ?? []) out.push(channelName(prefix, facility, 'session', s));
  return [...new Set(out)];
}

/**
 * The channels a connection subscribes or publishes to for its flags of one kind. An audience the
 * identity has no member of gives no channel (ws4redis would use a name like `user::f`).
 */
export function connectionChannels(
  prefix: string,
  facility: string,
  kind: 'subscribe' | 'publish',
  flags: readonly Ws4RedisFlag[],
  identity: Ws4RedisIdentity,
): string[] {
  const has = (audience: Audience) => flags.includes(`${kind}-${audience}` as Ws4RedisFlag);
  return targetChannels(prefix, facility, {
    broadcast: has('broadcast'),
    groups: has('group') ? identity.groups : [],
    users: has('user') && identity.user ? [identity.user] : [],
    sessions: has('session') && identity.session ? [identity.session] : [],
  });
}
