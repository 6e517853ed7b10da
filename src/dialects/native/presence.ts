// Presence and join/leave of the native dialect. A subscription in a namespace with `presence` is
// added to the channel's presence before its subscribe reply, and kept there by this node (added
// again every client.presence_update_interval, for engine.presence_ttl) until it leaves; one with
// `join_leave` publishes a join after its reply and a leave when it goes. Subscribers that asked
// (`join_leave` in subscribe, with presence access) or are made to (`force_push_join_leave`) are sent
// them. The `presence` and `presence_stats` commands read the engine, so they see every node.
import type { Logger } from 'pino';
import { canReadPresence, type ChannelRules } from '../../auth/channels.js';
import type { NamespaceOptions } from '../../config/schema.js';
import type { ClientInfo, Engine, JoinLeave } from '../../engine/engine.js';
import { logFailure } from '../../errors.js';
import { clientInfoJson, encodePush, encodeResult } from './codec.js';
import { Errors, ReplyError } from './codes.js';
import { channelOptions, channelOrBadRequest, overrideFlag } from './fields.js';
import type { ChannelSub } from './channel-ops.js';
import type { NativeSession } from './session.js';

/** Most clients one presence update call carries. */
const UPDATE_SLICE = 500;

/** What a subscription does about presence and join/leave. */
export interface PresenceFlags {
  /** It is in the channel's presence. */
  readonly emitPresence: boolean;
  /** It publishes a join and a leave. */
  readonly emitJoinLeave: boolean;
  /** It is sent the channel's joins and leaves. */
  readonly pushJoinLeave: boolean;
}

/**
 * The flags of a subscription: from the namespace, a token's `override` (`presence`, `join_leave`,
 * `force_push_join_leave`), and for client subscriptions the client's `join_leave`, honoured when the
 * namespace has join_leave and the client may read presence as a subscriber.
 */
export function presenceFlags(ns: NamespaceOptions, override: Record<string, unknown>, user: string, clientAsked: boolean, insecure = false): PresenceFlags {
  const asked = clientAsked && ns.join_leave && canReadPresence(ns, user, true, insecure);
  return {
    emitPresence: overrideFlag(override, 'presence', ns.presence),
    emitJoinLeave: overrideFlag(override, 'join_leave', ns.join_leave),
    pushJoinLeave: overrideFlag(override, 'force_push_join_leave', ns.force_push_join_leave) || asked,
  };
}

/**
 * This node's present subscriptions, per channel, added again to the engine before their entries
 * expire, each with its client's info as it is then (a connection `refresh` may change it).
 */
export class PresenceTracker {
  private readonly local = new Map<string, Map<string, ChannelSub>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly ttlMs: number,
    private readonly updateIntervalMs: number,
    private readonly log: Logger,
  ) {}

  /** Adds a subscription's client to its channel's presence; rejects (and forgets it) when the engine fails. */
  async add(sub: ChannelSub): Promise<void> {
    const { channel, session } = sub;
    let clients = this.local.get(channel);
    if (!clients) this.local.set(channel, (clients = new Map()));
    clients.set(session.id, sub);
    if (!this.timer) {
      this.timer = setInterval(() => this.update(), this.updateIntervalMs);
      this.timer.unref();
    }
    try {
      await this.engine.addPresence(channel, [subscriberInfo(sub)], this.ttlMs);
    } catch (err) {
      if (clients.get(session.id) === sub) this.forget(channel, session.id);
      throw err;
    }
  }

  /** Removes a client from a channel's presence (an engine failure is logged; the entry then expires). */
  remove(channel: string, clientId: string): void {
    this.forget(channel, clientId);
    this.engine.removePresence(channel, clientId).catch((err: unknown) => this.failed(err, channel, 'presence remove failed'));
  }

  /** Logs an engine failure of presence or join/leave: at most once per 5 s while the engine is unavailable. */
  failed(err: unknown, channel: string, msg: string): void {
    logFailure(this.log, err, { channel }, msg);
  }

  /** Stops updating (the node is closing). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private forget(channel: string, clientId: string): void {
    const clients = this.local.get(channel);
    if (!clients) return;
    clients.delete(clientId);
    if (clients.size === 0) this.local.delete(channel);
  }

  /** Adds every present client again, one engine call per channel. */
  private update(): void {
    if (this.local.size === 0) {
      this.close();
      return;
    }
    for (const [channel, clients] of this.local) {
      const infos = [...clients.values()].map(subscriberInfo);
      // In slices, so that a crowded channel does not hold Redis in one long call.
      for (let i = 0; i < infos.length; i += UPDATE_SLICE) {
        this.engine.addPresence(channel, infos.slice(i, i + UPDATE_SLICE), this.ttlMs).catch((err: unknown) => this.failed(err, channel, 'presence update failed'));
      }
    }
  }
}

/** Who a subscription's client is, in presence entries and joins/leaves (its connection's info as it is now). */
function subscriberInfo(sub: ChannelSub): ClientInfo {
  const s = sub.session;
  return { user: s.user, client: s.id, connInfo: s.connInfo, chanInfo: sub.chanInfo };
}

/** Publishes a subscription's join or leave (a failure is logged: join/leave is at most once). */
export function publishJoinLeave(s: NativeSession, sub: ChannelSub, kind: JoinLeave): void {
  s.ctx.engine.publishJoinLeave(sub.channel, kind, subscriberInfo(sub)).catch((err: unknown) => s.ctx.presence.failed(err, sub.channel, `${kind} failed`));
}

/** A subscription goes: out of presence, and its leave published. */
export function leaveChannel(s: NativeSession, sub: ChannelSub): void {
  if (sub.present) s.ctx.presence.remove(sub.channel, s.id);
  if (sub.joined) publishJoinLeave(s, sub, 'leave');
  sub.present = false;
  sub.joined = false;
}

/** The join or leave push of a channel (the hub's encoder for native subscribers). */
export function encodeJoinLeavePush(channel: string, kind: JoinLeave, info: ClientInfo): Buffer {
  return encodePush(kind, { info: clientInfoJson(info) }, channel);
}

/** A channel's namespace options when it keeps presence: 102 for an unknown namespace, 108 without presence. */
export function presenceOptions(rules: ChannelRules, channel: string): NamespaceOptions {
  const opts = rules.options(channel);
  if (!opts) throw new ReplyError(Errors.unknownChannel);
  return keepsPresence(opts);
}

/** The options when the namespace keeps presence; 108 otherwise. */
function keepsPresence(opts: NamespaceOptions): NamespaceOptions {
  if (!opts.presence) throw new ReplyError(Errors.notAvailable);
  return opts;
}

/** The `presence` and `presence_stats` commands. */
export async function handlePresence(s: NativeSession, id: number, req: Record<string, unknown>, method: 'presence' | 'presence_stats'): Promise<void> {
  const channel = channelOrBadRequest(req);
  const opts = keepsPresence(channelOptions(s.ctx.rules, channel)); // 102, 107 (channel_regex), 108
  if (!canReadPresence(opts, s.user, s.subs.has(channel), s.ctx.config.client.insecure)) throw new ReplyError(Errors.permissionDenied);
  s.write(encodeResult(id, method, await readPresence(s.ctx.engine, channel, method)));
}

/** A presence or presence_stats result (shared by the client protocol and the server API). */
export async function readPresence(engine: Engine, channel: string, method: 'presence' | 'presence_stats'): Promise<Record<string, unknown>> {
  if (method === 'presence_stats') {
    const stats = await engine.presenceStats(channel);
    return { num_clients: stats.numClients, num_users: stats.numUsers };
  }
  // Client ids are map keys: a null-prototype object, whatever an id is.
  const presence: Record<string, unknown> = Object.create(null);
  for (const [id, info] of await engine.presence(channel)) presence[id] = clientInfoJson(info);
  return { presence };
}
