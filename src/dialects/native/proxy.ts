// The proxies (Centrifugo's): Herald asks the application's backend over HTTP who a connection
// without a token is (connect), whether an expiring connection lives on (refresh), to answer a
// client's `rpc`, and, in the namespaces that enable them, whether a client may subscribe to a
// channel (subscribe), publish to it (publish), and whether such an expiring subscription lives on
// (sub_refresh). The backend answers `{"result": …}`, `{"error": {code, message}}` (sent to the
// client as a reply error) or `{"disconnect": {code, reason}}` (the connection ends with it); `null`
// fields count as absent, as in Centrifugo. A backend that fails, times out or answers anything else
// is an internal error (100, temporary: the client retries). At most MAX_IN_FLIGHT calls per proxy are
// under way at once: a reconnect storm queues (each call's timeout counting from when it was asked
// for) instead of opening thousands of connections to the backend.
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { expireAtMs, jsonClaimText, rawJsonClaim } from '../../auth/tokens.js';
import { DEFAULT_PROXY_NAME, type HeraldConfig, type NamespaceOptions } from '../../config/schema.js';
import { throttledWarn } from '../../engine/log-throttle.js';
import { CLAIM_KEYS, parseKeepingPayloads, payloadText } from '../../server/json-source.js';
import { encodeResult, rawJson, stringify } from './codec.js';
import { DisconnectError, Errors, ReplyError, type Disconnect, type ProtocolError } from './codes.js';
import { asObject, str } from './fields.js';
import type { NativeSession } from './session.js';

type ProxyConfig = HeraldConfig['client']['proxy']['connect'];

/** What the backend answered. */
export type ProxyReply = { readonly result: Record<string, unknown> } | { readonly error: ProtocolError } | { readonly disconnect: Disconnect };

/** Most calls to one proxy under way at once; the others wait for a turn. */
const MAX_IN_FLIGHT = 64;
/** Largest answer read from the backend. */
const MAX_ANSWER_BYTES = 1 << 20;
/** Headers Herald sets itself: never taken from the client's request. */
const OWN_HEADERS = new Set(['content-type', 'content-length', 'host', 'connection', 'transfer-encoding']);

/**
 * The headers of a client's request (the WebSocket upgrade, or the request that opened its HTTP
 * stream) that the proxies pass on, by the names the config lists; undefined when no proxy is on
 * (nothing is kept per connection then).
 */
export function forwardedHeaders(
  config: HeraldConfig,
  headers: IncomingHttpHeaders | Record<string, unknown>,
  emulated = false,
): Record<string, string> | undefined {
  if (!requestNames.has(config)) headerNamesOf(config);
  const wanted = (emulated ? emulatedNames : requestNames).get(config);
  if (!wanted) return undefined;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase();
    if (!wanted.has(key) || OWN_HEADERS.has(key)) continue;
    if (typeof value === 'string') out[key] = value;
    else if (Array.isArray(value)) out[key] = value.join(', ');
  }
  return out;
}

/** Per config, the header names the proxies on pass on from a connection's request; null when no proxy is on. */
const requestNames = new WeakMap<HeraldConfig, Set<string> | null>();
/** The same, from the connect command's `headers` too (`emulated_headers`). */
const emulatedNames = new WeakMap<HeraldConfig, Set<string> | null>();
/** Per proxy, the header names it is sent. */
const proxyNames = new WeakMap<ProxyConfig, Set<string>>();

const lowerSet = (names: readonly string[]) => new Set(names.map((h) => h.toLowerCase()));

/** Works out (once per config, which is frozen) the header names of requestNames and emulatedNames. */
function headerNamesOf(config: HeraldConfig): void {
  const { connect, refresh, rpc } = config.client.proxy;
  const { subscribe, publish, sub_refresh } = config.channel.proxy;
  const on = [connect, refresh, rpc, config.rpc.proxy, subscribe, publish, sub_refresh, ...config.proxies].filter((p) => p.endpoint);
  requestNames.set(config, on.length ? lowerSet(on.flatMap((p) => p.http_headers)) : null);
  emulatedNames.set(config, on.length ? lowerSet(on.flatMap((p) => [...p.http_headers, ...p.emulated_headers])) : null);
}

/** One proxy's turns: calls beyond MAX_IN_FLIGHT wait in order. */
class Turns {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  async run<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    // A turn is handed over directly to the next waiter (running stays counted), so that no new call
    // slips in between a turn ending and its waiter waking.
    if (this.running >= MAX_IN_FLIGHT) {
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal.removeEventListener('abort', gone);
          resolve();
        };
        const gone = () => {
          const i = this.waiting.indexOf(go);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal.reason as Error);
        };
        signal.addEventListener('abort', gone, { once: true });
        this.waiting.push(go);
      });
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

const turns = new WeakMap<ProxyConfig, Turns>();
const warnings = new WeakMap<Logger, ReturnType<typeof throttledWarn>>();

/** Each session's proxy calls under way or waiting for a turn (one controller per call, gone when it ends). */
const callsOf = new WeakMap<NativeSession, Set<AbortController>>();

/** Called when a session ends: its proxy calls still under way or waiting for a turn are abandoned. */
export function abandonProxyCalls(session: NativeSession): void {
  const calls = callsOf.get(session);
  if (calls) for (const call of calls) call.abort(new Error('the client left'));
}

/** Base64 as Go's standard encoding writes it (padded). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Why a result's fields cannot be read as Centrifugo's typed results read them (a Go backend's
 * answer would fail to decode there), or undefined when they can.
 */
function malformedResult(result: Record<string, unknown>): string | undefined {
  const expireAt = result.expire_at;
  if (expireAt !== undefined && !(Number.isSafeInteger(expireAt) && (expireAt as number) >= 0)) return 'expire_at is not a whole number of seconds';
  for (const flag of ['expired', 'skip_history']) {
    if (result[flag] !== undefined && typeof result[flag] !== 'boolean') return `${flag} is not a boolean`;
  }
  for (const name of ['info', 'data'] as const) {
    const b64 = result[`b64${name}`];
    if (b64 === undefined || b64 === '') continue;
    if (typeof b64 !== 'string' || !BASE64.test(b64) || rawJsonClaim(result, name) === undefined) return `b64${name} is not base64 of JSON`;
  }
  const override = result.override;
  if (override !== undefined) {
    if (!isObject(override)) return 'override is not an object';
    for (const [key, v] of Object.entries(override)) {
      if (v !== null && !(isObject(v) && typeof v.value === 'boolean')) return `override.${key} is not {"value": true or false}`;
    }
  }
  return undefined;
}

/**
 * Asks the backend for `session` (with the headers it passes on); throws when it fails or answers
 * something that is none of the three replies, or when the client leaves meanwhile (the request is
 * then abandoned, as Centrifugo cancels it, so that a storm of clients that leave does not hold the
 * backend's turns).
 */
export async function callProxy(config: ProxyConfig, body: Record<string, unknown>, session: NativeSession): Promise<ProxyReply> {
  let wanted = proxyNames.get(config);
  if (!wanted) proxyNames.set(config, (wanted = lowerSet([...config.http_headers, ...config.emulated_headers])));
  // The connection's meta (a token's or the connect proxy's `meta` claim), never shown to clients.
  if (config.include_connection_meta && session.meta !== undefined) body = { ...body, meta: rawJson(session.meta) };
  const sent: Record<string, string> = {};
  for (const [name, value] of Object.entries(session.proxyHeaders ?? {})) if (wanted.has(name)) sent[name] = value;
  // Last, as Centrifugo sets them: a client cannot replace what the operator fixed (a key the backend checks).
  for (const [name, value] of Object.entries(config.http.static_headers)) sent[name.toLowerCase()] = value;
  sent['content-type'] = 'application/json';
  if (session.closed) throw new Error('the client left');
  // One controller per call, for its timeout and for the client leaving (a long-lived signal that
  // every call listened to would keep a listener per call for the connection's life).
  const call = new AbortController();
  const signal = call.signal;
  const timer = setTimeout(() => call.abort(new DOMException('the backend did not answer in time', 'TimeoutError')), config.timeout);
  let calls = callsOf.get(session);
  if (!calls) callsOf.set(session, (calls = new Set()));
  calls.add(call);
  let queue = turns.get(config);
  if (!queue) turns.set(config, (queue = new Turns()));
  let text: string | ProxyReply;
  try {
    text = await queue.run(signal, async () => {
      const res = await fetch(config.endpoint, { method: 'POST', headers: sent, body: stringify(body), signal, redirect: 'error' });
      if (res.status !== 200) {
        await res.body?.cancel();
        // The operator may have said what a status means (Centrifugo's status_to_code_transforms).
        const transformed = transformStatus(config, res.status);
        if (transformed) return transformed;
        throw new Error(`the backend answered HTTP ${res.status}`);
      }
      return readLimited(res);
    });
  } finally {
    clearTimeout(timer);
    calls.delete(call);
  }
  if (typeof text !== 'string') return text;
  const reply: unknown = parseKeepingPayloads(text, CLAIM_KEYS);
  if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) throw new Error('the backend answered no JSON object');
  const { result, error, disconnect } = reply as { result?: unknown; error?: unknown; disconnect?: unknown };
  if (isObject(disconnect)) {
    const code = disconnect.code;
    // A close code the protocol can carry: 3000–4999.
    if (!Number.isInteger(code) || (code as number) < 3000 || (code as number) > 4999) throw new Error(`the backend's disconnect code ${String(code)} is not 3000–4999`);
    return { disconnect: { code: code as number, reason: str(disconnect.reason) } };
  }
  if (isObject(error)) {
    const code = error.code;
    if (!Number.isInteger(code) || (code as number) < 100) throw new Error(`the backend's error code ${String(code)} is not an integer from 100`);
    return { error: { code: code as number, message: str(error.message), temporary: error.temporary === true || undefined } };
  }
  if (result !== undefined && result !== null && !isObject(result)) throw new Error('the backend\'s result is not an object');
  // No result: an empty one (a void RPC; an anonymous connection). Null fields count as absent.
  const out = (result ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(out)) if (out[key] === null) delete out[key];
  const malformed = malformedResult(out);
  if (malformed !== undefined) throw new Error(`the backend's result is malformed: ${malformed}`);
  return { result: out };
}

/** The reply `http.status_to_code_transforms` makes of an HTTP status, or undefined when it names none. */
function transformStatus(config: ProxyConfig, status: number): ProxyReply | undefined {
  for (const t of config.http.status_to_code_transforms) {
    if (t.status_code !== status) continue;
    if (t.to_error.code > 0) return { error: { code: t.to_error.code, message: t.to_error.message, temporary: t.to_error.temporary || undefined } };
    return { disconnect: { code: t.to_disconnect.code, reason: t.to_disconnect.reason } };
  }
  return undefined;
}

/**
 * The data a publish proxy's result publishes in the client's place (raw JSON), or undefined to
 * publish the client's: `data` when given (as Centrifugo reads it), otherwise `b64data`.
 */
export function publishedData(result: Record<string, unknown>): string | undefined {
  return result.data !== undefined ? payloadText(result, 'data')?.replace(/\n/g, '') : rawJsonClaim(result, 'data');
}

/** The answer's text, refused past MAX_ANSWER_BYTES. */
async function readLimited(res: Response): Promise<string> {
  if (Number(res.headers.get('content-length') ?? 0) > MAX_ANSWER_BYTES) {
    await res.body?.cancel();
    throw new Error(`the backend's answer is over ${MAX_ANSWER_BYTES} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  for (;;) {
    const part = await reader?.read();
    if (!part || part.done) break;
    size += part.value.length;
    if (size > MAX_ANSWER_BYTES) {
      await reader!.cancel();
      throw new Error(`the backend's answer is over ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(part.value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Logs a failed proxy call: why, and which endpoint; once per 5 s per endpoint and cause, with a count. */
export function proxyFailed(session: NativeSession, which: 'connect' | 'refresh' | 'RPC' | 'subscribe' | 'publish' | 'sub_refresh', endpoint: string, err: unknown): void {
  if (session.closed) return; // the client left: its call was abandoned, nothing failed
  const log = session.ctx.log;
  let warn = warnings.get(log);
  if (!warn) warnings.set(log, (warn = throttledWarn(log, 5_000)));
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const reason = e.name === 'TimeoutError' ? 'timed out' : e.cause ? `${e.message}: ${e.cause.code ?? e.cause.message ?? ''}` : e.message;
  warn(`${which} ${endpoint} ${reason}`, { client: session.id, endpoint, reason }, `${which} proxy failed`);
}

/** What every proxy request says of the connection. */
export function proxyRequest(session: NativeSession): Record<string, unknown> {
  return { client: session.id, transport: session.transport, protocol: 'json', encoding: 'json' };
}

/**
 * Headers a connect command carries for the proxies (centrifuge-js `headers`, Centrifugo's emulated
 * headers, for browsers whose WebSocket cannot set any): added to the connection's, for the names the
 * config lists in `http_headers` or `emulated_headers`. A header of the connection's own request wins
 * over an emulated one of the same name (the client writes those; a gateway in front may set these).
 */
export function withCommandHeaders(session: NativeSession, req: Record<string, unknown>): Record<string, string> | undefined {
  const own = session.proxyHeaders;
  if (own === undefined || req.headers === undefined) return own;
  return { ...forwardedHeaders(session.ctx.config, asObject(req.headers), true), ...own };
}

/**
 * Calls a proxy about a session (`body` joins what every request says of the connection and its
 * user): the backend's reply, or undefined when it failed (logged).
 */
async function reach(
  session: NativeSession,
  which: 'RPC' | 'subscribe' | 'publish' | 'refresh' | 'sub_refresh',
  config: ProxyConfig,
  body: Record<string, unknown>,
): Promise<ProxyReply | undefined> {
  try {
    return await callProxy(config, { ...proxyRequest(session), user: session.user, ...body }, session);
  } catch (err) {
    proxyFailed(session, which, config.endpoint, err);
    return undefined;
  }
}

/**
 * Asks a proxy on behalf of a client's command: the backend's result, or its error (a reply error) or
 * disconnect thrown as the command's outcome; a failing backend is error 100 (temporary).
 */
async function ask(session: NativeSession, which: 'RPC' | 'subscribe' | 'publish', config: ProxyConfig, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const reply = await reach(session, which, config, body);
  if (!reply) throw new ReplyError(Errors.internal);
  if ('disconnect' in reply) throw new DisconnectError(reply.disconnect);
  if ('error' in reply) throw new ReplyError(reply.error);
  return reply.result;
}

/**
 * A client's `rpc`: the ping extension's empty answer, or the answer of the backend its method's
 * namespace picked (108 when the namespace has no proxy on, 104 for a namespace not configured).
 */
export async function handleRpc(session: NativeSession, id: number, req: Record<string, unknown>): Promise<void> {
  const method = str(req.method);
  const { ping } = session.ctx.config.rpc;
  if (ping.enabled && method === ping.method) return session.write(encodeResult(id, 'rpc', {}));
  const config = rpcProxy(session.ctx.config, method);
  const result = await ask(session, 'RPC', config, { method, data: rawJson(rawJsonClaim(req, 'data')) });
  session.write(encodeResult(id, 'rpc', { data: rawJson(rawJsonClaim(result, 'data')) }));
}

/**
 * Asks the subscribe or publish proxy whether the client may subscribe to `channel` or publish `data`
 * (raw JSON) to it: the backend's result (what to change), or its refusal thrown as the command's.
 */
export function askChannelProxy(
  session: NativeSession,
  which: 'subscribe' | 'publish',
  ns: NamespaceOptions,
  channel: string,
  data: string | undefined,
): Promise<Record<string, unknown>> {
  return ask(session, which, channelProxy(session.ctx.config, ns, which), { channel, data: rawJson(data) });
}

const namedProxies = new WeakMap<HeraldConfig, Map<string, ProxyConfig>>();

/** One of `proxies` by name (the config checked that a namespace's name is there, with an endpoint). */
function namedProxy(config: HeraldConfig, name: string): ProxyConfig {
  let named = namedProxies.get(config);
  if (!named) namedProxies.set(config, (named = new Map(config.proxies.map((p) => [p.name, p]))));
  return named.get(name)!;
}

/** The proxy a namespace picked for `which`: `channel.proxy.<which>`, or one of `proxies` by name. */
export function channelProxy(config: HeraldConfig, ns: NamespaceOptions, which: 'subscribe' | 'publish' | 'sub_refresh'): ProxyConfig {
  const name = ns[`${which}_proxy_name`];
  return name === DEFAULT_PROXY_NAME ? config.channel.proxy[which] : namedProxy(config, name);
}

/**
 * The proxy that answers an RPC `method`: `client.proxy.rpc` for every method when it is set;
 * otherwise, as Centrifugo picks it, by the method's namespace (what precedes `rpc.namespace_boundary`,
 * or none): `rpc.proxy` or a named proxy. A namespace not configured is 104, one without its proxy on 108.
 * With no RPC proxy at all, every method is 108 (104 beside the ping extension), as in Centrifugo, whose
 * namespaces are read only when some proxy answers RPC.
 */
function rpcProxy(config: HeraldConfig, method: string): ProxyConfig {
  if (config.client.proxy.rpc.endpoint) return config.client.proxy.rpc;
  const { rpc } = config;
  if (!rpc.without_namespace.proxy_enabled && !rpc.namespaces.some((n) => n.proxy_enabled)) {
    throw new ReplyError(rpc.ping.enabled ? Errors.methodNotFound : Errors.notAvailable);
  }
  const at = rpc.namespace_boundary ? method.indexOf(rpc.namespace_boundary) : -1;
  const ns = at < 0 ? '' : method.slice(0, at);
  const options = ns === '' ? rpc.without_namespace : rpc.namespaces.find((n) => n.name === ns);
  if (!options) throw new ReplyError(Errors.methodNotFound);
  if (!options.proxy_enabled) throw new ReplyError(Errors.notAvailable);
  return options.proxy_name === DEFAULT_PROXY_NAME ? rpc.proxy : namedProxy(config, options.proxy_name);
}

/** How long a connection or subscription lives on when its refresh fails, before it is asked about again (Centrifugo's minute). */
export const REFRESH_RETRY_MS = 60_000;

/** What the refresh or sub_refresh proxy answers: the new expiry (0: none given) and info, or `expired`, or `failed` (logged). */
export type RefreshOutcome = { readonly expireAt: number; readonly info: string | undefined; readonly meta: string | undefined } | 'expired' | 'failed';

/**
 * Asks the refresh or sub_refresh proxy whether a connection or subscription lives on. `expired` when
 * the answer says so, has no result (a refresh carries no error nor disconnect, as in Centrifugo) or
 * gives an `expire_at` already past; what no `expire_at` means is the caller's (centrifuge ends a
 * connection then, and keeps a subscription without expiry).
 */
export async function askRefresh(
  session: NativeSession,
  which: 'refresh' | 'sub_refresh',
  config: ProxyConfig,
  body: Record<string, unknown>,
): Promise<RefreshOutcome> {
  const reply = await reach(session, which, config, body);
  if (!reply) return 'failed';
  if (!('result' in reply)) {
    // An error or a disconnect (the backend's, or a status_to_code_transforms entry): no result, so
    // expired, as in Centrifugo; said, since an outage mapped to an error now ends connections.
    session.ctx.log.info({ client: session.id, endpoint: config.endpoint, answer: reply }, `${which} proxy answered no result: expired`);
    return 'expired';
  }
  const result = reply.result;
  const expireAt = expireAtMs(result);
  if (result.expired === true || (expireAt > 0 && expireAt <= Date.now())) return 'expired';
  return { expireAt, info: rawJsonClaim(result, 'info'), meta: jsonClaimText(result, 'meta') };
}
