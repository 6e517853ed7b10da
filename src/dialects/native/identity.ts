// Who a connecting client is: the claims of its connection token, or, without a token, what the
// connect proxy's backend answers, the user a gateway named in a request header
// (client.user_id_http_header), or an anonymous connection where the config allows one; and how
// an expiring connection lives on: refreshed by the client with a new token, or, with the refresh
// proxy, by the server asking the backend.
import type { IncomingMessage } from 'node:http';
import type { HeraldConfig } from '../../config/schema.js';
import { expireAtMs, jsonClaimText, malformedConnectClaims, rawJsonClaim, tokenExpiry, tokenUser } from '../../auth/tokens.js';
import { encodeControl } from '../../api/control.js';
import { encodeResult, rawJson, ttlSeconds } from './codec.js';
import { DisconnectError, Disconnects, Errors, type Disconnect, type ProtocolError } from './codes.js';
import { asObject, str } from './fields.js';
import { askRefresh, callProxy, proxyFailed, proxyRequest, REFRESH_RETRY_MS, withCommandHeaders } from './proxy.js';
import type { NativeSession } from './session.js';

/** A connection's identity, and what its connect reply and subscriptions take from it. */
export interface Identity {
  readonly user: string;
  /** Connection info (raw JSON), shown to others in presence and publications. */
  readonly info: string | undefined;
  /** Connection meta (raw JSON): passed to the proxies that include it, never shown to clients. */
  readonly meta?: string | undefined;
  /** When the connection expires (ms since the epoch); 0 = never. */
  readonly expireAt: number;
  /** Server-side subscriptions, each once. */
  readonly channels: string[];
  /** Per-channel options of the server-side subscriptions (`subs`). */
  readonly subs: Record<string, unknown>;
  /** `data` for the connect reply (raw JSON; the connect proxy's). */
  readonly data: string | undefined;
}

/** The identity, or how the connect fails: an error reply, or the end of the connection. */
export type IdentityOutcome = { readonly identity: Identity } | { readonly error: ProtocolError } | { readonly disconnect: Disconnect };

/**
 * Decides who the client of a `connect` command is; undefined when the session closed meanwhile. With
 * `client.subscribe_to_user_personal_channel`, a user's server-side subscriptions include its
 * personal channel.
 */
export async function connectIdentity(session: NativeSession, req: Record<string, unknown>): Promise<IdentityOutcome | undefined> {
  const outcome = await resolveIdentity(session, req);
  const personal = session.ctx.config.client.subscribe_to_user_personal_channel;
  if (!outcome || !('identity' in outcome) || !personal.enabled || outcome.identity.user === '') return outcome;
  const channel = session.ctx.rules.personalChannel(personal, outcome.identity.user);
  const { channels } = outcome.identity;
  return channels.includes(channel) ? outcome : { identity: { ...outcome.identity, channels: [...channels, channel] } };
}

/**
 * With `client.subscribe_to_user_personal_channel.single_connection`, a user's new connection ends the
 * user's others, on every node, with 3504 (`connection limit`), as Centrifugo does. When it cannot
 * (the engine is away), the new connection is closed with 3004 instead, so the rule is never broken
 * silently; the client reconnects and tries again.
 */
export async function endOtherConnections(session: NativeSession): Promise<void> {
  const { config, engine, log } = session.ctx;
  const personal = config.client.subscribe_to_user_personal_channel;
  if (!personal.enabled || !personal.single_connection || session.user === '') return;
  try {
    if (!(await othersMayExist(session, session.ctx.rules.personalChannel(personal, session.user)))) return;
    const params = { user: session.user, whitelist: [session.id], disconnect: Disconnects.connectionLimit };
    await engine.publishControl(encodeControl({ method: 'disconnect', params }));
  } catch (err) {
    if (session.closed) return;
    log.warn({ err, user: session.user, client: session.id }, "could not end the user's other connections (single_connection): closing the new one");
    session.close(Disconnects.serverError);
  }
}

/**
 * Whether the user may have another connection somewhere: on one node (the memory engine) its
 * registry knows; with presence on the personal channel, presence says (a connection made at the
 * same instant may not be there yet); otherwise it may, and every node is told.
 */
async function othersMayExist(session: NativeSession, channel: string): Promise<boolean> {
  const { config, registry, rules, engine } = session.ctx;
  if (config.engine.type === 'memory') return registry.userConnections(session.user) > 1;
  if (!rules.options(channel)?.presence) return true;
  for (const client of (await engine.presence(channel)).keys()) if (client !== session.id) return true;
  return false;
}

async function resolveIdentity(session: NativeSession, req: Record<string, unknown>): Promise<IdentityOutcome | undefined> {
  const { config, connectionTokens, log } = session.ctx;
  // The connect command's own headers join the connection's, for every proxy's calls.
  session.proxyHeaders = withCommandHeaders(session, req);
  const token = typeof req.token === 'string' ? req.token : '';
  if (token) {
    const result = await connectionTokens.verify(token);
    if (session.closed) return undefined;
    if (result.status === 'expired') {
      log.debug({ client: session.id }, 'expired connection token (error 109: the client refreshes it)');
      return { error: Errors.tokenExpired };
    }
    const malformed = result.status === 'invalid' ? result.reason : malformedConnectClaims(result.claims);
    if (malformed !== undefined || result.status !== 'ok') {
      log.info({ client: session.id, reason: malformed }, 'invalid connection token');
      return { disconnect: Disconnects.invalidToken };
    }
    const expireAt = tokenExpiry(result.claims);
    if (expireAt > 0 && expireAt <= Date.now()) return { error: Errors.tokenExpired };
    const user = tokenUser(result.claims, config.client.token.user_id_claim);
    if (user === '' && config.client.disallow_anonymous_connection_tokens) {
      log.info({ client: session.id }, 'anonymous connection token refused (client.disallow_anonymous_connection_tokens)');
      return { disconnect: Disconnects.permissionDenied };
    }
    // The client.insecure mode: the connection does not expire (as in Centrifugo).
    return fromClaims(result.claims, user, config.client.insecure ? 0 : expireAt, undefined);
  }
  const proxy = config.client.proxy.connect;
  if (proxy.endpoint) return askProxy(session, req);
  // A gateway in front authenticated the request and named the user in client.user_id_http_header
  // (after the connect proxy, whose result wins, as in Centrifugo).
  if (session.headerUser !== undefined) return plainIdentity(session.headerUser);
  if (config.client.allow_anonymous_connect_without_token || config.client.insecure) return plainIdentity('');
  log.info({ client: session.id }, 'connection without token refused (anonymous connections are not allowed)');
  return { disconnect: { code: Disconnects.badRequest.code, reason: 'bad request: token required' } };
}

/** A user with nothing more: no info, expiry, server-side subscriptions nor data. */
function plainIdentity(user: string): { identity: Identity } {
  return { identity: { user, info: undefined, expireAt: 0, channels: [], subs: {}, data: undefined } };
}

/** The identity a token's claims, or a connect proxy's result, give (Centrifugo reads both alike). */
function fromClaims(claims: Record<string, unknown>, user: string, expireAt: number, data: string | undefined): { identity: Identity } {
  const subs = asObject(claims.subs);
  // Each channel once, whether the claims name it twice or in both `channels` and `subs`.
  const named = new Set<string>(Array.isArray(claims.channels) ? claims.channels.filter((c): c is string => typeof c === 'string') : []);
  for (const ch of Object.keys(subs)) named.add(ch);
  return { identity: { user, info: rawJsonClaim(claims, 'info'), meta: jsonClaimText(claims, 'meta'), expireAt, channels: [...named], subs, data } };
}

/** Asks the connect proxy's backend who a client without a token is. */
async function askProxy(session: NativeSession, req: Record<string, unknown>): Promise<IdentityOutcome | undefined> {
  const proxy = session.ctx.config.client.proxy.connect;
  const body = { ...proxyRequest(session), name: str(req.name), version: str(req.version), data: rawJson(rawJsonClaim(req, 'data')) };
  try {
    const reply = await callProxy(proxy, body, session);
    if (session.closed) return undefined;
    if (!('result' in reply)) return reply;
    const result = reply.result;
    const malformed = malformedConnectClaims(result);
    if (malformed !== undefined || (result.user !== undefined && typeof result.user !== 'string')) {
      throw new Error(`the backend's result is malformed: ${malformed ?? 'user is not a string'}`);
    }
    // The proxy's `expire_at` (seconds) is when the connection expires; one already past is 110, as
    // in Centrifugo.
    const expireAt = expireAtMs(result);
    if (expireAt > 0 && expireAt < Date.now()) return { error: Errors.expired };
    return fromClaims(result, str(result.user), expireAt, rawJsonClaim(result, 'data'));
  } catch (err) {
    proxyFailed(session, 'connect', proxy.endpoint, err);
    return { error: Errors.internal };
  }
}

/**
 * The client's `refresh` with a new connection token. With the refresh proxy the server refreshes
 * and a client's `refresh` is a protocol error (3501), as in Centrifugo.
 */
export async function handleRefresh(session: NativeSession, id: number, req: Record<string, unknown>): Promise<void> {
  const { config, connectionTokens, version } = session.ctx;
  const token = typeof req.token === 'string' ? req.token : '';
  if (!token || config.client.proxy.refresh.endpoint) throw new DisconnectError(Disconnects.badRequest);
  const result = await connectionTokens.verify(token);
  if (result.status === 'expired') throw new DisconnectError(Disconnects.expired);
  if (result.status === 'invalid') throw new DisconnectError(Disconnects.invalidToken);
  if (tokenUser(result.claims, config.client.token.user_id_claim) !== session.user) throw new DisconnectError(Disconnects.invalidToken);
  // A token whose `expire_at` has passed is expired, as a connect with it would be.
  const expireAt = tokenExpiry(result.claims);
  if (expireAt > 0 && expireAt <= Date.now()) throw new DisconnectError(Disconnects.expired);
  const info = rawJsonClaim(result.claims, 'info');
  if (info !== undefined) session.connInfo = info;
  // The new token's meta replaces the connection's, as in Centrifugo (absent: kept).
  const meta = jsonClaimText(result.claims, 'meta');
  if (meta !== undefined) session.meta = meta;
  session.setExpiry(expireAt);
  const out: Record<string, unknown> = { client: session.id, version };
  if (session.expireAt > 0) {
    out.expires = true;
    out.ttl = ttlSeconds(session.expireAt);
  }
  session.write(encodeResult(id, 'refresh', out));
}

/**
 * An expiring connection with the refresh proxy on, at its expiry: the backend says whether it lives
 * on (a later `expire_at`, and new `info`) or not (`expired`, or no later `expire_at`: closed with
 * 3005, as centrifuge does). A backend that fails is asked again a minute later, the connection
 * living on meanwhile. An answer that comes after the server API changed the expiry is dropped.
 */
export async function refreshConnectionByProxy(session: NativeSession): Promise<void> {
  const asked = session.expireAt;
  const outcome = await askRefresh(session, 'refresh', session.ctx.config.client.proxy.refresh, {});
  if (session.closed || session.expireAt !== asked) return;
  if (outcome === 'failed') return session.setExpiry(Date.now() + REFRESH_RETRY_MS);
  if (outcome === 'expired' || outcome.expireAt === 0) return session.close(Disconnects.expired);
  if (outcome.info !== undefined) session.connInfo = outcome.info;
  if (outcome.meta !== undefined) session.meta = outcome.meta;
  session.setExpiry(outcome.expireAt);
}

/**
 * The user `client.user_id_http_header` names in a connection's request, or undefined: no such key,
 * no such header, an empty one, or one given more than once (a gateway must set it, not add to it;
 * Node would join the lines into one value).
 */
export function userFromHeader(config: HeraldConfig, req: IncomingMessage): string | undefined {
  const name = config.client.user_id_http_header;
  if (!name) return undefined;
  const values = req.headersDistinct[name.toLowerCase()];
  return values?.length === 1 && values[0] ? values[0] : undefined;
}
