// The connect and RPC proxies (Centrifugo's): Herald asks the application's backend over HTTP who a
// connection without a token is, and to answer a client's `rpc`. The backend answers
// `{"result": …}`, `{"error": {code, message}}` (sent to the client as a reply error) or
// `{"disconnect": {code, reason}}` (the connection ends with it). A backend that fails, times out or
// answers anything else is an internal error (100, temporary: the client retries).
import type { IncomingHttpHeaders } from 'node:http';
import { rawJsonClaim } from '../../auth/tokens.js';
import type { HeraldConfig } from '../../config/schema.js';
import { parseKeepingPayloads } from '../../server/json-source.js';
import { encodeResult, RawJson, stringify } from './codec.js';
import { DisconnectError, Errors, ReplyError, type Disconnect, type ProtocolError } from './codes.js';
import { str } from './fields.js';
import type { NativeSession } from './session.js';

type ProxyConfig = HeraldConfig['client']['proxy']['connect'];

/** What the backend answered. */
export type ProxyReply = { readonly result: Record<string, unknown> } | { readonly error: ProtocolError } | { readonly disconnect: Disconnect };

/**
 * The headers of a client's request (the WebSocket upgrade, or the request that opened its HTTP
 * stream) that the proxies pass on, by the names the config lists; undefined when no proxy is on
 * (nothing is kept per connection then).
 */
export function forwardedHeaders(config: HeraldConfig, headers: IncomingHttpHeaders): Record<string, string> | undefined {
  const { connect, rpc } = config.client.proxy;
  if (!connect.endpoint && !rpc.endpoint) return undefined;
  const out: Record<string, string> = {};
  for (const name of [...connect.http_headers, ...rpc.http_headers]) {
    const value = headers[name.toLowerCase()];
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Asks the backend; throws when it fails or answers something that is none of the three replies. */
export async function callProxy(config: ProxyConfig, body: Record<string, unknown>, headers: Record<string, string> | undefined): Promise<ProxyReply> {
  const wanted = new Set(config.http_headers.map((h) => h.toLowerCase()));
  const sent: Record<string, string> = { 'content-type': 'application/json' };
  for (const [name, value] of Object.entries(headers ?? {})) if (wanted.has(name)) sent[name] = value;
  const res = await fetch(config.endpoint, { method: 'POST', headers: sent, body: stringify(body), signal: AbortSignal.timeout(config.timeout), redirect: 'error' });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`the backend answered HTTP ${res.status}`);
  const reply = parseKeepingPayloads(text) as Record<string, unknown> | null;
  if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) throw new Error('the backend answered no JSON object');
  const { result, error, disconnect } = reply as { result?: unknown; error?: unknown; disconnect?: unknown };
  if (isObject(disconnect) && Number.isInteger(disconnect.code)) {
    return { disconnect: { code: disconnect.code as number, reason: str(disconnect.reason) } };
  }
  if (isObject(error) && Number.isInteger(error.code)) {
    return { error: { code: error.code as number, message: str(error.message), temporary: error.temporary === true || undefined } };
  }
  if (isObject(result)) return { result };
  throw new Error('the backend answered none of result, error and disconnect');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What every proxy request says of the connection. */
export function proxyRequest(session: NativeSession): Record<string, unknown> {
  return { client: session.id, transport: session.transport, protocol: 'json', encoding: 'json' };
}

/** A client's `rpc`: answered by the RPC proxy's backend, or 108 when none is configured. */
export async function handleRpc(session: NativeSession, id: number, req: Record<string, unknown>): Promise<void> {
  const config = session.ctx.config.client.proxy.rpc;
  if (!config.endpoint) throw new ReplyError(Errors.notAvailable);
  const data = rawJsonClaim(req, 'data');
  const body = { ...proxyRequest(session), user: session.user, method: str(req.method), data: data === undefined ? undefined : new RawJson(data) };
  let reply: ProxyReply;
  try {
    reply = await callProxy(config, body, session.proxyHeaders);
  } catch (err) {
    session.ctx.log.warn({ client: session.id, err: (err as Error).message }, 'RPC proxy failed');
    throw new ReplyError(Errors.internal);
  }
  if ('disconnect' in reply) throw new DisconnectError(reply.disconnect);
  if ('error' in reply) throw new ReplyError(reply.error);
  const out = rawJsonClaim(reply.result, 'data');
  session.write(encodeResult(id, 'rpc', { data: out === undefined ? undefined : new RawJson(out) }));
}
