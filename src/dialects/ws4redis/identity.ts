// Who a ws4redis connection is, without Django's database: either the application's identity hook
// (an HTTP call carrying the upgrade's cookies and headers) or a signed token (JWT with the native
// dialect's keys) in the query or a cookie. Any doubt refuses the upgrade: a socket never opens with
// a guessed identity.
import type { IncomingMessage } from 'node:http';
import type { Ws4RedisConfig, Ws4RedisFlag } from '../../config/schema.js';
import { tokenUser, type TokenVerifier } from '../../auth/tokens.js';
import { ANONYMOUS, type Ws4RedisIdentity } from './channels.js';
import type { Ws4RedisRequest } from './url.js';

/** How identity resolution ended. */
export type IdentityOutcome =
  | {
      readonly ok: true;
      readonly identity: Ws4RedisIdentity;
      /** The flags the hook allows, when it answered a `channels` list. */
      readonly channels?: readonly string[];
    }
  | {
      readonly ok: false;
      /** The HTTP status the upgrade is refused with. */
      readonly status: 403 | 502 | 504;
      readonly reason: string;
    };

/** What the identity hook receives as its JSON body. */
export interface IdentityHookRequest {
  /** The path Herald serves: the prefix and the facility, percent-decoded (as Django's `request.path`). */
  readonly path: string;
  /** The facility the connection gets. */
  readonly facility: string;
  readonly query: string;
  readonly channels: readonly Ws4RedisFlag[];
  readonly headers: Readonly<Record<string, string>>;
}

/** Longest hook answer read; anything longer is not an identity. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** Resolves identities for one node's ws4redis upgrades. */
export class IdentityResolver {
  constructor(
    private readonly config: Ws4RedisConfig,
    private readonly tokens: TokenVerifier,
    private readonly userClaim: string,
  ) {}

  /** True when an identity hook is configured (tokens are then not read). */
  get usesHook(): boolean {
    return this.config.identity_hook.url !== '';
  }

  /** The identity of an upgrade request. */
  resolve(req: IncomingMessage, url: URL, request: Ws4RedisRequest): Promise<IdentityOutcome> {
    return this.usesHook ? this.callHook(req, url, request) : this.fromToken(req, url);
  }

  private async callHook(req: IncomingMessage, url: URL, request: Ws4RedisRequest): Promise<IdentityOutcome> {
    const { url: hookUrl, timeout } = this.config.identity_hook;
    const body: IdentityHookRequest = {
      path: `${this.config.path_prefix}${request.facility}`,
      facility: request.facility,
      query: rawQuery(req, url),
      channels: request.flags,
      headers: plainHeaders(req),
    };
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (req.headers.cookie !== undefined) headers.cookie = req.headers.cookie;
    let status: number;
    let text: string | null;
    try {
      const res = await fetch(hookUrl, { method: 'POST', headers, body: JSON.stringify(body), redirect: 'manual', signal: AbortSignal.timeout(timeout) });
      status = res.status;
      text = status === 200 ? await readLimited(res) : '';
      if (status !== 200) await res.body?.cancel().catch(() => undefined);
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') return { ok: false, status: 504, reason: `identity hook did not answer within ${timeout} ms` };
      return { ok: false, status: 502, reason: `identity hook unreachable: ${describe(err)}` };
    }
    if (status === 403 || status === 401) return { ok: false, status: 403, reason: `identity hook refused the connection (${status})` };
    if (status !== 200) return { ok: false, status: 502, reason: `identity hook answered ${status} (expected 200 or 403)` };
    if (text === null) return { ok: false, status: 502, reason: `identity hook answer longer than ${MAX_ANSWER_BYTES} bytes` };
    const parsed = parseAnswer(text);
    if (typeof parsed === 'string') return { ok: false, status: 502, reason: `identity hook answer malformed: ${parsed}` };
    return { ok: true, ...parsed };
  }

  private async fromToken(req: IncomingMessage, url: URL): Promise<IdentityOutcome> {
    const { query_param, cookie } = this.config.token;
    const token = (query_param && url.searchParams.get(query_param)) || (cookie && readCookie(req.headers.cookie, cookie)) || '';
    if (!token) return { ok: true, identity: ANONYMOUS };
    const result = await this.tokens.verify(token);
    if (result.status === 'expired') return { ok: false, status: 403, reason: 'token expired' };
    if (result.status === 'invalid') return { ok: false, status: 403, reason: `invalid token: ${result.reason}` };
    const claims = result.claims;
    const groups = Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : [];
    return {
      ok: true,
      identity: {
        user: tokenUser(claims, this.userClaim) || null,
        groups,
        session: typeof claims.session === 'string' && claims.session !== '' ? claims.session : null,
      },
    };
  }
}

/** The path and raw query as the client sent them (the parsed URL re-encodes some characters). */
function rawQuery(req: IncomingMessage, url: URL): string {
  const raw = req.url ?? '';
  if (!raw.startsWith('/')) return url.search.slice(1);
  const q = raw.indexOf('?');
  return q < 0 ? '' : raw.slice(q + 1);
}

/** Every header of the upgrade request, names lower-case, repeated ones joined as Node joins them. */
function plainHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** The hook's answer as an identity, or a string saying what is wrong with it. */
export function parseAnswer(text: string): { identity: Ws4RedisIdentity; channels?: readonly string[] } | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const a = value as Record<string, unknown>;
  const user = optionalName(a.user);
  if (user === undefined) return '"user" must be a string or null';
  const session = optionalName(a.session);
  if (session === undefined) return '"session" must be a string or null';
  const groups = a.groups === undefined || a.groups === null ? [] : strings(a.groups);
  if (!groups) return '"groups" must be a list of strings';
  const channels = a.channels === undefined || a.channels === null ? undefined : strings(a.channels);
  if (channels === null) return '"channels" must be a list of strings';
  const identity: Ws4RedisIdentity = { user, groups, session };
  return channels ? { identity, channels } : { identity };
}

/** A name that may be absent: string (empty reads as none), number, or null; undefined when malformed. */
function optionalName(v: unknown): string | null | undefined {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

function strings(v: unknown): string[] | null {
  return Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : null;
}

/** A cookie's value from a Cookie header, or '' when absent. */
export function readCookie(header: string | undefined, name: string): string {
  if (!header) return '';
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return '';
}

/** The answer's text, or null when it is longer than an identity can be. */
async function readLimited(res: Response): Promise<string | null> {
  if (Number(res.headers.get('content-length') ?? '0') > MAX_ANSWER_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    return null;
  }
  const text = await res.text();
  return Buffer.byteLength(text) > MAX_ANSWER_BYTES ? null : text;
}

function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message;
}
