// Channel commands of the native dialect: subscribe (with positioning and recovery), unsubscribe and
// sub_refresh; plus server-side subscriptions (connection token, server API). Publish and history
// are in publish-history.ts.
import { canReadHistory, canSubscribe } from '../../auth/channels.js';
import { expireAtMs, rawJsonClaim, tokenExpiry, tokenUser } from '../../auth/tokens.js';
import type { NamespaceOptions } from '../../config/schema.js';
import type { Publication, StreamPosition } from '../../engine/engine.js';
import { logFailure } from '../../errors.js';
import type { Subscriber } from '../../hub/hub.js';
import { encodePush, encodeResult, publicationJson, RawJson, ttlSeconds } from './codec.js';
import { Disconnects, DisconnectError, Errors, ReplyError, Unsubscribes } from './codes.js';
import { NATIVE_DELTA_FORMAT, NATIVE_FORMAT } from './context.js';
import { DeltaChain, FOSSIL, RECOVERY_DELTA_BUDGET } from './delta.js';
import { matchesTags, parseTagsFilter, type TagsFilter } from './tags-filter.js';
import { isRecovered, liveAfter, type Buffered, type RecoverFrom } from './recovery.js';
import { asObject, channelOptions, channelOrBadRequest, isStreamType, num, overrideFlag, str } from './fields.js';
import { presenceFlags, publishJoinLeave, type PresenceFlags } from './presence.js';
import { askChannelProxy, askRefresh, channelProxy, REFRESH_RETRY_MS } from './proxy.js';
import { assertJsonPayloads, historyOf, metaTtlOf } from './publish-history.js';
import type { NativeSession } from './session.js';

/**
 * One subscription of a session. The hub holds it as the channel's subscriber (a session is in the
 * hub once per channel it holds, through this), so a publication reaches it without a lookup by
 * channel in the session: under fan-out that is one object fewer to touch per delivery.
 */
export class ChannelSub implements Subscriber {
  readonly format: string;
  /** Last offset sent to the client, and the epoch it belongs to. */
  offset = 0;
  epoch = '';
  /** Live publications held until the subscribe reply is written; null once active. */
  buffer: Buffered[] | null = [];
  expireTimer: NodeJS.Timeout | undefined = undefined;
  /** In the channel's presence (from just before the engine is asked, until it leaves). */
  present = false;
  /** Its join was published: a leave follows when it goes. */
  joined = false;
  /** Sent the channel's joins and leaves (the hub asks). */
  pushJoinLeave = false;
  /** Refreshed by the server through the sub_refresh proxy (the client was not told of its expiry). */
  serverRefreshed = false;
  /** The client's tags filter (publication filtering): publications it does not match are not sent. */
  filter: TagsFilter | undefined = undefined;

  constructor(
    readonly session: NativeSession,
    readonly channel: string,
    /** Subscribed by the server (token `channels`/`subs`, server API), not by a client command. */
    readonly serverSide: boolean,
    public positioned: boolean,
    public recoverable: boolean,
    /** When the subscription expires (ms since epoch); 0 = never. */
    public expireAt: number,
    /** Raw JSON channel info (subscription token `info`): the `chan_info` of this client's publications. */
    public chanInfo: string | undefined,
    /** Negotiated delta compression: its publications go out as strings, some as deltas. */
    readonly delta: DeltaChain | null = null,
  ) {
    this.format = delta ? NATIVE_DELTA_FORMAT : NATIVE_FORMAT;
  }

  deliver(_channel: string, pub: Publication, position: StreamPosition, bytes: Buffer): void {
    this.session.deliver(this, pub, position, bytes);
  }

  resync(): void {
    this.session.resync(this);
  }

  joinLeave(bytes: Buffer): void {
    // Not before its subscribe reply (a join/leave is not a publication to hold back), nor once it
    // has left (the engine may deliver its own leave before the hub has let it go).
    if (this.buffer === null && this.session.subs.get(this.channel) === this) this.session.write(bytes);
  }
}

interface SetupOptions {
  readonly positioned: boolean;
  readonly recoverable: boolean;
  readonly recover?: RecoverFrom;
  readonly rejectUnrecovered: boolean;
  readonly cacheMode: boolean;
  readonly expireAt: number;
  readonly data?: string;
  readonly chanInfo?: string;
  readonly presence: PresenceFlags;
  /** Refreshed by the server through the sub_refresh proxy (a namespace with sub_refresh_proxy_enabled). */
  readonly serverRefreshed?: boolean;
  /** The client asked for fossil deltas and the namespace allows them. */
  readonly delta?: boolean;
  /** The client's tags filter: only the publications it matches are sent. */
  readonly filter?: TagsFilter;
}

/** A subscription set up but not yet active: write `result` somewhere, then call `activate`. */
interface Prepared {
  readonly result: Record<string, unknown>;
  readonly activate: () => void;
}

/**
 * The checks a client's `subscribe` command passes before its permission, in Centrifugo's order: the
 * channel it names and that namespace's options; the first failed check is thrown.
 */
function subscribeTarget(s: NativeSession, req: Record<string, unknown>): { channel: string; opts: NamespaceOptions } {
  const { config, rules } = s.ctx;
  const channel = channelOrBadRequest(req);
  // A delta type Centrifugo does not know closes the connection (3501), as there; a known one the
  // namespace does not allow is ignored (handleSubscribe).
  if (req.delta !== undefined && req.delta !== null && req.delta !== '' && req.delta !== FOSSIL) throw new DisconnectError(Disconnects.badRequest);
  if (rules.tooLong(channel)) throw new ReplyError(Errors.limitExceeded);
  if (s.subs.has(channel)) throw new ReplyError(Errors.alreadySubscribed);
  if (s.subs.size >= config.client.channel_limit) throw new ReplyError(Errors.limitExceeded);
  const opts = channelOptions(rules, channel);
  // Map and shared-poll subscriptions (`type` 1 and 2) are not offered either: refused, not taken as a stream.
  if (!isStreamType(req.type)) throw new ReplyError(Errors.badRequest);
  return { channel, opts };
}

/** The `subscribe` command. */
export async function handleSubscribe(s: NativeSession, id: number, req: Record<string, unknown>): Promise<void> {
  const { config } = s.ctx;
  const { channel, opts } = subscribeTarget(s, req);

  let expireAt = 0;
  let data: string | undefined;
  let chanInfo: string | undefined;
  let override: Record<string, unknown> = {};
  let serverRefreshed = false;
  let proxied = false;
  const token = str(req.token);
  const route = subscribeRoute(s, channel, opts, token);
  if (route === 'token') {
    const claims = await verifySubscriptionToken(s, channel, token, 'subscribe');
    data = rawJsonClaim(claims, 'data');
    chanInfo = rawJsonClaim(claims, 'info');
    expireAt = tokenExpiry(claims);
    override = asObject(claims.override);
    if (expireAt > 0 && expireAt <= Date.now()) throw new ReplyError(Errors.tokenExpired);
    serverRefreshed = opts.sub_refresh_proxy_enabled;
  } else if (route === 'proxy') {
    // The backend decides, as a token would.
    const result = await askChannelProxy(s, 'subscribe', opts, channel, rawJsonClaim(req, 'data'));
    data = rawJsonClaim(result, 'data');
    chanInfo = rawJsonClaim(result, 'info');
    override = asObject(result.override);
    expireAt = expireAtMs(result);
    if (expireAt > 0 && expireAt <= Date.now()) throw new ReplyError(Errors.expired);
    serverRefreshed = opts.sub_refresh_proxy_enabled;
    proxied = true;
  }

  // A tags filter (`tf`), after the permissions as in Centrifugo: only where the namespace allows it,
  // well formed, and not with delta compression (a delta's base would be a publication the filter
  // may have held back); else 107.
  // Fossil where the namespace does not allow it is ignored (no `delta` in the result), as in Centrifugo.
  const delta = req.delta === FOSSIL && opts.allowed_delta_types.includes(FOSSIL);
  let filter: TagsFilter | undefined;
  if (req.tf !== undefined && req.tf !== null) {
    if (!opts.allow_tags_filter || delta) throw new ReplyError(Errors.badRequest);
    try {
      filter = parseTagsFilter(req.tf);
    } catch (err) {
      throw new ReplyError({ ...Errors.badRequest, message: `bad request: ${(err as Error).message}` });
    }
  }

  const forceRecovery = overrideFlag(override, 'force_recovery', opts.force_recovery);
  const forcePositioning = overrideFlag(override, 'force_positioning', opts.force_positioning);
  // Asked for by the client: where the namespace allows it, or, as in Centrifugo, where the client may
  // read the channel's history (which must be kept), unless the subscribe proxy decided (Centrifugo
  // then takes the proxy's override alone; Herald's allow_positioning / allow_recovery still count).
  const historyAccess = !proxied && opts.history_size > 0 && canReadHistory(opts, s.user, true, config.client.insecure);
  const recoverable = forceRecovery || ((opts.allow_recovery || historyAccess) && req.recoverable === true);
  const positioned = recoverable || forcePositioning || ((opts.allow_positioning || historyAccess) && req.positioned === true);
  const cacheMode = recoverable && opts.force_recovery_mode === 'cache';
  const prepared = await setup(s, channel, opts, false, {
    positioned,
    recoverable,
    recover: recoverable && req.recover === true ? { offset: num(req.offset), epoch: str(req.epoch) } : undefined,
    rejectUnrecovered: (num(req.flag) & 2) !== 0,
    cacheMode,
    expireAt,
    data,
    chanInfo,
    presence: presenceFlags(opts, override, s.user, req.join_leave === true, config.client.insecure && !proxied),
    serverRefreshed,
    delta,
    filter,
  });
  if (!prepared) return;
  s.write(encodeResult(id, 'subscribe', prepared.result));
  prepared.activate();
}

/**
 * What allows a client's subscribe: its subscription token, the subscribe proxy (the backend), or the
 * namespace's rules (`open`), checked now; a refusal is thrown (permission denied).
 */
function subscribeRoute(s: NativeSession, channel: string, opts: NamespaceOptions, token: string | undefined): 'token' | 'proxy' | 'open' {
  const { config, rules } = s.ctx;
  if (token) return 'token';
  if (rules.isPrivate(channel)) throw new ReplyError(Errors.permissionDenied);
  if (rules.isUserLimited(channel, opts)) {
    // Only the users it lists, whatever else the namespace allows (and never asking the backend);
    // the client.insecure mode lets anyone, as in Centrifugo.
    if (!rules.userAllowed(channel, s.user, opts) && !config.client.insecure) throw new ReplyError(Errors.permissionDenied);
    return 'open';
  }
  if (opts.subscribe_proxy_enabled) return 'proxy';
  if (!canSubscribe(opts, s.user, config.client.insecure)) throw new ReplyError(Errors.permissionDenied);
  return 'open';
}

/**
 * Before a frame of several `subscribe` commands is handled (one after another, each answered in
 * turn), asks the hub to subscribe the engine to their channels at once (hub.ts, `warm`): those
 * the session does not hold and that its namespace's rules allow it now (no token or backend to
 * ask), as many as the channel limit leaves room for. Returns what to call once the frame is done.
 */
export function warmFrame(s: NativeSession, commands: ReadonlyArray<Record<string, unknown>>): (() => void) | undefined {
  const room = s.ctx.config.client.channel_limit - s.subs.size;
  const channels = new Set<string>();
  let subscribes = 0;
  for (const cmd of commands) {
    const req = cmd.subscribe;
    if (req === undefined || req === null) continue;
    subscribes++;
    if (channels.size >= room) break;
    try {
      const r = asObject(req);
      const { channel, opts } = subscribeTarget(s, r);
      if (subscribeRoute(s, channel, opts, str(r.token)) === 'open') channels.add(channel);
    } catch {
      // Refused: its command says so in its turn.
    }
  }
  return subscribes > 1 && channels.size > 1 ? s.ctx.hub.warm([...channels]) : undefined;
}

/** A server-side subscription made at connect (token `channels`/`subs`); the result goes in the connect reply. */
export async function connectSubscription(
  s: NativeSession,
  channel: string,
  opts: { recover?: RecoverFrom; claims: Record<string, unknown>; expireAt?: number },
): Promise<Prepared> {
  const ns = s.ctx.rules.options(channel);
  if (!ns) throw new ReplyError(Errors.unknownChannel);
  const override = asObject(opts.claims.override);
  const recoverable = overrideFlag(override, 'force_recovery', ns.force_recovery);
  const positioned = recoverable || overrideFlag(override, 'force_positioning', ns.force_positioning);
  const expireAt = opts.expireAt ?? 0;
  const prepared = await setup(s, channel, ns, true, {
    positioned,
    recoverable,
    recover: recoverable ? opts.recover : undefined,
    rejectUnrecovered: false,
    cacheMode: recoverable && ns.force_recovery_mode === 'cache',
    expireAt,
    // An expiring server-side subscription (API subscribe's expire_at) is refreshed by the server
    // where the namespace has the sub_refresh proxy on, as Centrifugo asks its sub_refresh handler.
    serverRefreshed: expireAt > 0 && ns.sub_refresh_proxy_enabled,
    data: rawJsonClaim(opts.claims, 'data'),
    chanInfo: rawJsonClaim(opts.claims, 'info'),
    presence: presenceFlags(ns, override, s.user, false),
  });
  if (!prepared) throw new DisconnectError(Disconnects.connectionClosed);
  return prepared;
}

/**
 * A server-side subscription made by the server API: set up as the token's are (`claims` is the API
 * call's: `data`/`b64data`, `info`/`b64info`, `override`), and announced with a `subscribe` push;
 * with `expireAt` (the call's `expire_at`), it ends the connection (3006) once expired, as a
 * server-side subscription the client cannot refresh.
 */
export async function apiSubscribe(
  s: NativeSession,
  channel: string,
  opts: { claims: Record<string, unknown>; recoverSince?: RecoverFrom; expireAt?: number },
): Promise<void> {
  if (s.state !== 'connected' || s.subs.has(channel)) return;
  let prepared: Prepared;
  try {
    prepared = await connectSubscription(s, channel, { recover: opts.recoverSince, claims: opts.claims, expireAt: opts.expireAt });
  } catch (err) {
    if (s.closed) return; // the connection went meanwhile
    // The call was answered already; the client learns of the failure as from a server-side
    // subscription failing at connect: it reconnects, and recovers what it missed.
    if (err instanceof DisconnectError) return s.close(err.disconnect);
    logFailure(s.ctx.log, err, { channel, client: s.id }, 'server API subscribe failed');
    return s.close(Disconnects.serverError);
  }
  const r = prepared.result;
  s.write(
    encodePush(
      'subscribe',
      { recoverable: r.recoverable, epoch: r.epoch, offset: r.offset, positioned: r.positioned, data: r.data },
      channel,
    ),
  );
  // The push carries no publications: recovered ones (recover_since) follow it as pub pushes.
  for (const pub of (r.publications as Record<string, unknown>[] | undefined) ?? []) s.write(encodePush('pub', pub, channel));
  prepared.activate();
}

/** The `unsubscribe` command: `{}` even when the channel was not subscribed. */
export async function handleUnsubscribe(s: NativeSession, id: number, req: Record<string, unknown>): Promise<void> {
  const channel = channelOrBadRequest(req);
  const sub = s.subs.get(channel);
  if (sub) s.dropSub(sub);
  s.write(encodeResult(id, 'unsubscribe', {}));
}

/** The `sub_refresh` command: a new subscription token extends the subscription. */
export async function handleSubRefresh(s: NativeSession, id: number, req: Record<string, unknown>): Promise<void> {
  const channel = channelOrBadRequest(req);
  const sub = s.subs.get(channel);
  if (!sub) throw new ReplyError(Errors.permissionDenied);
  // The server refreshes this one (sub_refresh proxy): the client was never asked to, as in Centrifugo.
  if (sub.serverRefreshed) throw new DisconnectError(Disconnects.badRequest);
  const token = str(req.token);
  if (!token) throw new ReplyError(Errors.badRequest);
  const claims = await verifySubscriptionToken(s, channel, token, 'sub_refresh');
  if (s.closed) return;
  if (s.subs.get(channel) !== sub) throw new ReplyError(Errors.permissionDenied); // gone meanwhile
  const info = rawJsonClaim(claims, 'info');
  if (info !== undefined) sub.chanInfo = info;
  armSubExpiry(s, sub, tokenExpiry(claims));
  s.write(encodeResult(id, 'sub_refresh', expiryFields(sub.expireAt)));
}

/**
 * Joins the hub, reads the stream position (and missed publications when recovering), and prepares
 * the result. Publications arriving meanwhile are buffered and sent after the result, in order.
 * Returns null when the session closed meanwhile.
 */
async function setup(
  s: NativeSession,
  channel: string,
  ns: NamespaceOptions,
  serverSide: boolean,
  o: SetupOptions,
): Promise<Prepared | null> {
  // Closed while a token was verified: cleanup has run, so nothing may be added any more.
  if (s.closed) return null;
  // Callers subscribe a channel the session does not hold (one subscription per channel: the hub
  // holds each one, and would hand a replaced one the channel's publications too).
  const delta = o.delta ? new DeltaChain(ns.delta_publish) : null;
  const sub = new ChannelSub(s, channel, serverSide, o.positioned, o.recoverable, o.expireAt, o.chanInfo, delta);
  sub.pushJoinLeave = o.presence.pushJoinLeave;
  sub.serverRefreshed = o.serverRefreshed === true;
  sub.filter = o.filter;
  s.subs.set(sub);
  const { historyReads, hub, config } = s.ctx;
  const fail = (err: unknown): never => {
    s.dropSub(sub);
    if (err instanceof ReplyError || err instanceof DisconnectError) throw err;
    logFailure(s.ctx.log, err, { channel }, 'subscribe failed');
    throw new ReplyError(Errors.internal);
  };
  // Closed during setup: cleanup may have run before the sub was complete; take it out of the hub.
  const gone = (): null => {
    s.dropSub(sub);
    return null;
  };
  const result: Record<string, unknown> = {};
  try {
    await hub.subscribe(channel, sub);
    if (s.closed) return gone();
    if (o.positioned && historyOf(ns)) {
      let pubs: Buffered['pub'][] = [];
      let top: StreamPosition;
      let lastOffset: number;
      if (o.recover) {
        let recovered: boolean;
        if (o.cacheMode) {
          // The latest publication; with a tags filter, the latest one it matches (as Centrifugo looks for it).
          const limit = o.filter ? config.client.recovery_max_publication_limit : 1;
          const hist = await historyReads.read(channel, { limit, reverse: true, metaTtlMs: metaTtlOf(ns) });
          top = hist.position;
          const latest = o.filter ? hist.publications.find((pub) => matchesTags(o.filter!, pub.tags)) : hist.publications[0];
          const sameEpoch = o.recover.epoch === '' || o.recover.epoch === top.epoch;
          if (latest) {
            recovered = true;
            if (!(sameEpoch && latest.offset === o.recover.offset)) pubs = [latest];
          } else {
            recovered = sameEpoch && o.recover.offset > 0 && o.recover.offset === top.offset;
          }
        } else {
          const hist = await historyReads.read(channel, {
            since: { offset: o.recover.offset, epoch: o.recover.epoch },
            limit: config.client.recovery_max_publication_limit,
            metaTtlMs: metaTtlOf(ns),
          });
          top = hist.position;
          recovered = isRecovered(hist.publications, top, o.recover);
          if (recovered) pubs = [...hist.publications];
        }
        if (s.closed) return gone();
        if (!recovered && o.rejectUnrecovered) throw new ReplyError(Errors.unrecoverablePosition);
        lastOffset = recovered ? (pubs.length ? pubs[pubs.length - 1]!.offset : o.recover.offset) : top.offset;
        if (o.cacheMode && recovered) lastOffset = top.offset;
        result.recovered = recovered || undefined;
        result.was_recovering = true;
        result.offset = recovered && !o.cacheMode ? o.recover.offset : top.offset;
        const sent = o.filter ? pubs.filter((pub) => matchesTags(o.filter!, pub.tags)) : pubs;
        assertJsonPayloads(sent); // only what would be sent
        const budget = { left: RECOVERY_DELTA_BUDGET };
        if (sent.length) result.publications = sent.map(delta ? (pub) => delta.json(pub, budget) : publicationJson);
      } else {
        top = (await historyReads.read(channel, { limit: 0, metaTtlMs: metaTtlOf(ns) })).position;
        if (s.closed) return gone();
        lastOffset = top.offset;
        result.offset = top.offset;
      }
      result.offset ||= undefined; // zero fields are omitted
      result.epoch = top.epoch;
      result.positioned = true;
      result.recoverable = o.recoverable || undefined;
      sub.offset = lastOffset;
      sub.epoch = top.epoch;
      if (!liveAfter(sub.buffer!, lastOffset, top.epoch)) throw new DisconnectError(Disconnects.insufficientState);
    } else {
      sub.positioned = false;
    }
    // In the channel's presence before the reply, as Centrifugo does (a presence call right after
    // subscribing sees the client). Marked first, so that leaving meanwhile removes it again.
    if (o.presence.emitPresence) {
      if (s.subs.get(channel) !== sub) throw new ReplyError(Errors.internal); // lost meanwhile (resync)
      sub.present = true;
      await s.ctx.presence.add(sub);
      if (s.closed) return gone();
    }
    // The engine lost the channel's subscription while this one was set up (see NativeSession.resync):
    // a temporary error, and the client subscribes again.
    if (s.subs.get(channel) !== sub) throw new ReplyError(Errors.internal);
  } catch (err) {
    return fail(err);
  }
  if (o.data !== undefined) result.data = new RawJson(o.data);
  if (delta) result.delta = true;
  // Refreshed by the server (sub_refresh proxy): the client is not told of the expiry.
  if (!sub.serverRefreshed) Object.assign(result, expiryFields(o.expireAt));
  return {
    result,
    activate: () => {
      if (s.closed || s.subs.get(channel) !== sub) return;
      // Publications buffered until now, including any that came after the history read (e.g.
      // while other channels of the same connect were set up), merged after the result.
      const ready = sub.positioned ? liveAfter(sub.buffer!, sub.offset, sub.epoch) : sub.buffer!;
      if (!ready) return s.close(Disconnects.insufficientState);
      for (const b of ready) {
        if (b.pub.offset > sub.offset) sub.offset = b.pub.offset;
        s.sendPublication(sub, b.pub, b.bytes);
      }
      sub.buffer = null;
      armSubExpiry(s, sub, o.expireAt);
      // The join goes after the reply: the client, sent joins, sees its own.
      if (o.presence.emitJoinLeave && !s.closed && s.subs.get(channel) === sub) {
        sub.joined = true;
        publishJoinLeave(s, sub, 'join');
      }
    },
  };
}

/** Verifies a subscription token for a channel; mismatching channel or user ends the connection (3500). */
async function verifySubscriptionToken(
  s: NativeSession,
  channel: string,
  token: string,
  command: 'subscribe' | 'sub_refresh',
): Promise<Record<string, unknown>> {
  const { config, subscriptionTokens, connectionTokens } = s.ctx;
  const verifier = config.client.subscription_token.enabled ? subscriptionTokens : connectionTokens;
  const result = await verifier.verify(token);
  if (result.status === 'expired') throw new ReplyError(Errors.tokenExpired);
  if (result.status === 'invalid') {
    s.ctx.log.info({ client: s.id, channel, reason: result.reason }, 'invalid subscription token');
    if (command === 'sub_refresh') throw new DisconnectError(Disconnects.invalidToken);
    throw new ReplyError(Errors.permissionDenied);
  }
  const claims = result.claims;
  const userClaim = config.client.subscription_token.enabled ? config.client.subscription_token.user_id_claim : config.client.token.user_id_claim;
  if (claims.channel !== channel || tokenUser(claims, userClaim) !== s.user) {
    throw new DisconnectError(Disconnects.invalidToken);
  }
  if (typeof claims.client === 'string' && claims.client !== '' && claims.client !== s.id) {
    throw new DisconnectError(Disconnects.invalidToken);
  }
  return claims;
}

/** Arms a subscription's expiry: unrefreshed, it ends with unsubscribe 2501 (or disconnect 3006). */
function armSubExpiry(s: NativeSession, sub: ChannelSub, expireAt: number): void {
  sub.expireAt = expireAt;
  if (sub.expireTimer) clearTimeout(sub.expireTimer);
  sub.expireTimer = undefined;
  // No timer for a subscription already dropped (e.g. writing its held-back publications closed the
  // connection, or it left while a refresh token was verified): it would keep the session alive.
  if (expireAt <= 0 || s.subs.get(sub.channel) !== sub) return;
  // Refreshed by the server, it is asked about at the expiry; a client has a grace delay to refresh.
  const { expired_sub_close_delay: subGrace, expired_close_delay: grace } = s.ctx.config.client;
  const delay = Math.max(0, expireAt - Date.now()) + (sub.serverRefreshed ? 0 : (subGrace ?? grace));
  sub.expireTimer = setTimeout(() => {
    if (sub.expireAt <= 0 || s.subs.get(sub.channel) !== sub) return;
    // Fired early: an expiry past the longest timer Node keeps (24.8 days) is armed again.
    if (sub.expireAt > Date.now()) return armSubExpiry(s, sub, sub.expireAt);
    if (sub.serverRefreshed) {
      refreshSubByProxy(s, sub).catch((err: unknown) => logFailure(s.ctx.log, err, { channel: sub.channel }, 'sub refresh failed'));
      return;
    }
    expireSub(s, sub);
  }, Math.min(delay, 2 ** 31 - 1));
}

/** Ends an expired subscription: unsubscribe 2501, or, for a server-side one, the connection (3006). */
function expireSub(s: NativeSession, sub: ChannelSub): void {
  if (sub.serverSide) return s.close(Disconnects.subExpired);
  s.dropSub(sub);
  s.write(encodePush('unsubscribe', Unsubscribes.expired, sub.channel));
}

/**
 * At its expiry, asks the sub_refresh proxy whether a subscription lives on, and with which info; an
 * answer without `expire_at` keeps it without expiry, as centrifuge does.
 */
async function refreshSubByProxy(s: NativeSession, sub: ChannelSub): Promise<void> {
  const ns = s.ctx.rules.options(sub.channel);
  if (!ns) return expireSub(s, sub); // its namespace is always configured: the subscription was made
  const outcome = await askRefresh(s, 'sub_refresh', channelProxy(s.ctx.config, ns, 'sub_refresh'), { channel: sub.channel });
  if (s.closed || s.subs.get(sub.channel) !== sub) return;
  if (outcome === 'expired') return expireSub(s, sub);
  if (outcome === 'failed') return armSubExpiry(s, sub, Date.now() + REFRESH_RETRY_MS);
  if (outcome.info !== undefined) sub.chanInfo = outcome.info;
  armSubExpiry(s, sub, outcome.expireAt);
}

function expiryFields(expireAt: number): Record<string, unknown> {
  if (expireAt <= 0) return {};
  return { expires: true, ttl: ttlSeconds(expireAt) };
}
