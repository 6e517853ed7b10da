// The server HTTP API: `POST /api/<method>` (and legacy `POST /api` with {method, params}), API key
// auth, and Centrifugo's two error modes. Without a configured key every call is refused (401).
//
// A call is handled with callbacks, not async functions: publishers call by the thousand a second,
// and each async layer and await costs promises and a suspended frame per call, garbage that the
// young-generation collector then stops the process to clear (see docs/optimisations.md).
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stringify } from '../dialects/native/codec.js';
import { readBodyThen } from '../server/body.js';
import { parseKeepingPayloads } from '../server/json-source.js';
import { requestFailed } from '../server/failure.js';
import { Errors, type ProtocolError } from '../dialects/native/codes.js';
import { logFailure } from '../errors.js';
import { afterFlush } from '../hub/outbox.js';
import { apiMethods, toApiError, type ApiContext } from './methods.js';

/** The path prefix of the server API. */
export const API_PATH = '/api';

const TRANSPORT_STATUS: Record<number, number> = { 100: 500, 102: 404, 104: 404, 107: 400, 108: 400, 112: 416, 113: 409 };

/** True when a request target (path and query, as `req.url` has it) is the server API's. */
export function isApiTarget(target: string): boolean {
  return target.startsWith(API_PATH) && (target.length === API_PATH.length || '/?#'.includes(target[API_PATH.length]!));
}

/**
 * Handles one API request whose target `isApiTarget`. Answers every request, itself: an unexpected
 * failure is logged and answered 500.
 */
export function handleApiRequest(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): void {
  try {
    const target = req.url ?? '';
    const end = target.search(/[?#]/);
    const path = end < 0 ? target : target.slice(0, end);
    const query = end >= 0 && target[end] === '?' ? target.slice(end + 1).split('#')[0]! : '';
    const { http_api } = ctx.config;
    // The method first, then the key, as Centrifugo's handler chain checks them.
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return send(res, 405, 'method not allowed\n', 'text/plain');
    }
    if (!http_api.insecure && !authorized(http_api.key, req, query)) return send(res, 401, '', 'text/plain');
    // A browser tells a request another site's page made (a form or fetch aimed here): a backend's
    // call never carries it. Refused, so a key that is known (the demo's) or absent (`insecure`) does
    // not let any web page the user opens drive the API.
    if (req.headers['sec-fetch-site'] === 'cross-site') return send(res, 403, 'the server API does not take calls from web pages of other sites\n', 'text/plain');
    readBodyThen(req, http_api.max_body_size, (body, err) => {
      try {
        onBody(ctx, req, res, path, body, err);
      } catch (e) {
        requestFailed(ctx.log, req, res, e);
      }
    });
  } catch (e) {
    requestFailed(ctx.log, req, res, e);
  }
}

function onBody(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, path: string, body: Buffer | undefined, err: Error | undefined): void {
  if (err) return send(res, 400, 'unreadable request body\n', 'text/plain');
  if (!body) {
    res.setHeader('Connection', 'close');
    return send(res, 413, 'request body too large\n', 'text/plain');
  }
  // No body is no request (Centrifugo cannot decode one either): `{}` is the empty request.
  if (body.length === 0) return send(res, 400, 'empty request body: send a JSON object, {} for none\n', 'text/plain');
  const name = path.slice(API_PATH.length + 1);
  if (name === '') return legacyCall(ctx, req, res, body);
  let params: unknown;
  try {
    params = parseKeepingPayloads(body.toString('utf8'));
  } catch {
    return send(res, 400, 'invalid JSON body\n', 'text/plain');
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    return send(res, 400, 'the body must be a JSON object\n', 'text/plain');
  }
  const method = Object.hasOwn(apiMethods, name) ? apiMethods[name] : undefined;
  if (!method) return send(res, 404, 'unknown API method\n', 'text/plain');
  runMethod(ctx, name, params as Record<string, unknown>).then(
    (result) => {
      try {
        // batch answers {replies: [...]} at the top level; everything else is wrapped in `result`.
        const out = stringify(name === 'batch' ? result : { result });
        ctx.countCall?.(name, 'ok');
        // Subscribers first: the reply goes out after the deliveries the call queued.
        afterFlush(() => send(res, 200, out, 'application/json'));
      } catch (e) {
        requestFailed(ctx.log, req, res, e);
      }
    },
    (e: unknown) => {
      try {
        const error = failureOf(ctx, name, e);
        const transportErrors =
          ctx.config.http_api.error_mode === 'transport' || String(req.headers['x-centrifugo-error-mode'] ?? '').toLowerCase() === 'transport';
        if (transportErrors) return send(res, TRANSPORT_STATUS[error.code] ?? 500, stringify(error), 'application/json');
        send(res, 200, stringify({ error }), 'application/json');
      } catch (e2) {
        requestFailed(ctx.log, req, res, e2);
      }
    },
  );
}

/** The API error a failed call answers, counted (and logged when internal). */
function failureOf(ctx: ApiContext, name: string, e: unknown): ProtocolError {
  const error = toApiError(e);
  ctx.countCall?.(name, String(error.code));
  if (error.code === Errors.internal.code) logFailure(ctx.log, e, { method: name }, 'API method failed');
  return error;
}

/** Runs one known method; a method that throws at once answers like one that rejects. */
function runMethod(ctx: ApiContext, name: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  try {
    return apiMethods[name]!(ctx, params);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Centrifugo's legacy method numbers (its Command.MethodType); names are read in any case. Known
 * numbers and names of methods Herald has not (user status, push notifications) answer 104.
 */
const LEGACY_METHODS: readonly string[] = [
  'publish', 'broadcast', 'unsubscribe', 'disconnect', 'presence', 'presence_stats', 'history', 'history_remove',
  'channels', 'info', 'rpc', 'subscribe', 'refresh', '', 'connections', 'update_user_status', 'get_user_status',
  'delete_user_status', 'block_user', 'unblock_user', 'revoke_token', 'invalidate_user_tokens', 'device_register',
  'device_update', 'device_remove', 'device_list', 'device_topic_list', 'device_topic_update', 'user_topic_list',
  'user_topic_update', 'send_push_notification', 'update_push_status', 'cancel_push',
];

/**
 * Legacy form, `POST /api`: one or more commands `{"id": n, "method": "publish" | 0, "params": {...}}`
 * one after another (pycent and other older clients send several, a line each), run in order;
 * answered 200 with one reply `{"id", "result"}` or `{"id", "error"}` per command, a line each, as
 * Centrifugo's legacy handler does (it has no transport error mode). A command that cannot be read
 * (not JSON, an unknown method name) makes the whole request 400.
 */
function legacyCall(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const commands: Array<{ id: number; name: string | undefined; params: unknown }> = [];
  const texts = splitJsonValues(body.toString('utf8'));
  if (!texts) return send(res, 400, 'invalid JSON body\n', 'text/plain');
  for (const text of texts) {
    let cmd: unknown;
    try {
      cmd = parseKeepingPayloads(text);
    } catch {
      return send(res, 400, 'invalid JSON body\n', 'text/plain');
    }
    if (typeof cmd !== 'object' || cmd === null || Array.isArray(cmd)) return send(res, 400, 'each command must be a JSON object\n', 'text/plain');
    const { id = 0, method = 0, params } = cmd as Record<string, unknown>;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff) return send(res, 400, 'id must be an unsigned integer\n', 'text/plain');
    let name: string | undefined;
    if (typeof method === 'string') {
      name = method.toLowerCase();
      if (!LEGACY_METHODS.includes(name) || name === '') return send(res, 400, `unknown API method ${JSON.stringify(method)}\n`, 'text/plain');
    } else if (typeof method === 'number' && Number.isInteger(method)) {
      name = LEGACY_METHODS[method] || undefined; // an unknown number is 104 in its reply
    } else {
      return send(res, 400, 'method must be a name or a number\n', 'text/plain');
    }
    commands.push({ id, name: name !== undefined && Object.hasOwn(apiMethods, name) && name !== 'batch' ? name : undefined, params });
  }
  // In order, one after another (a loop, not a recursion: a body may hold thousands).
  const run = async (): Promise<string[]> => {
    const replies: string[] = [];
    for (const { id, name, params } of commands) {
      let body: Record<string, unknown>;
      if (name === undefined) {
        body = { error: { code: Errors.methodNotFound.code, message: Errors.methodNotFound.message } };
      } else if (params !== undefined && params !== null && (typeof params !== 'object' || Array.isArray(params))) {
        ctx.countCall?.(name, String(Errors.badRequest.code));
        body = { error: { code: Errors.badRequest.code, message: 'params must be a JSON object' } };
      } else {
        try {
          // No params (or null): an empty request, as Centrifugo decodes it; each method names what it misses.
          const result = await runMethod(ctx, name, (params ?? {}) as Record<string, unknown>);
          ctx.countCall?.(name, 'ok');
          body = { result };
        } catch (e) {
          body = { error: failureOf(ctx, name, e) };
        }
      }
      replies.push(stringify(id ? { id, ...body } : body));
    }
    return replies;
  };
  run().then(
    (replies) => afterFlush(() => send(res, 200, replies.join('\n'), 'application/json')),
    (e: unknown) => requestFailed(ctx.log, req, res, e),
  );
}

/**
 * The JSON values of a text holding one or more, one after another (with or without whitespace
 * between them, as Go's json.Decoder reads a stream); undefined when it is not such a text. Each is
 * checked by JSON.parse later: this only finds where each ends.
 */
export function splitJsonValues(text: string): string[] | undefined {
  const values: string[] = [];
  let i = 0;
  const n = text.length;
  const isSpace = (c: string) => c === ' ' || c === '\n' || c === '\r' || c === '\t';
  while (i < n) {
    while (i < n && isSpace(text[i]!)) i++;
    if (i === n) break;
    const start = i;
    let depth = 0;
    let inString = false;
    for (; i < n; i++) {
      const c = text[i]!;
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        if (--depth === 0) {
          i++;
          break;
        }
        if (depth < 0) return undefined;
      } else if (depth === 0 && isSpace(c)) break;
    }
    if (depth !== 0 || inString) return undefined;
    values.push(text.slice(start, i));
  }
  return values.length ? values : undefined;
}

/** The configured key as bytes, made once per key (compared on every call). */
let keyBytes: { key: string; bytes: Buffer } | undefined;

/** True when any of the three ways to give the key (as Centrifugo reads them) carries it. */
function authorized(key: string, req: IncomingMessage, query: string): boolean {
  if (!key) return false;
  // `X-API-Key` when given, else `Authorization: apikey <key>`; then `?api_key=` (Centrifugo's order:
  // a wrong X-API-Key is not saved by a right Authorization header).
  const header = req.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') {
    if (sameKey(key, header)) return true;
  } else {
    const auth = req.headers.authorization;
    const bearer = typeof auth === 'string' ? /^apikey\s+(\S+)$/i.exec(auth.trim())?.[1] : undefined;
    if (bearer !== undefined && sameKey(key, bearer)) return true;
  }
  const param = query ? new URLSearchParams(query).get('api_key') : null;
  return param !== null && sameKey(key, param);
}

function sameKey(key: string, given: string): boolean {
  if (keyBytes?.key !== key) keyBytes = { key, bytes: Buffer.from(key) };
  const a = Buffer.from(given);
  return a.length === keyBytes.bytes.length && timingSafeEqual(a, keyBytes.bytes);
}

function send(res: ServerResponse, status: number, body: string, type: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
