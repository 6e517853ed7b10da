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
import { Errors } from '../dialects/native/codes.js';
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
    if (!http_api.insecure && !authorized(http_api.key, req, query)) return send(res, 401, '', 'text/plain');
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return send(res, 405, 'method not allowed\n', 'text/plain');
    }
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
  let params: unknown;
  try {
    params = body.length ? parseKeepingPayloads(body.toString('utf8')) : {};
  } catch {
    return send(res, 400, 'invalid JSON body\n', 'text/plain');
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    return send(res, 400, 'the body must be a JSON object\n', 'text/plain');
  }
  let name = path.slice(API_PATH.length + 1);
  if (name === '') {
    // Legacy form: POST /api {"method": "...", "params": {...}}.
    const legacy = params as Record<string, unknown>;
    name = typeof legacy.method === 'string' ? legacy.method : '';
    params = typeof legacy.params === 'object' && legacy.params !== null ? legacy.params : {};
  }
  const method = Object.hasOwn(apiMethods, name) ? apiMethods[name] : undefined;
  if (!method) return send(res, 404, 'unknown API method\n', 'text/plain');
  let answer: Promise<Record<string, unknown>>;
  try {
    answer = method(ctx, params as Record<string, unknown>);
  } catch (e) {
    answer = Promise.reject(e); // a method that throws at once answers like one that rejects
  }
  answer.then(
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
        const error = toApiError(e);
        ctx.countCall?.(name, String(error.code));
        if (error.code === Errors.internal.code) logFailure(ctx.log, e, { method: name }, 'API method failed');
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

/** The configured key as bytes, made once per key (compared on every call). */
let keyBytes: { key: string; bytes: Buffer } | undefined;

/** True when any of the three ways to give the key (as Centrifugo reads them) carries it. */
function authorized(key: string, req: IncomingMessage, query: string): boolean {
  if (!key) return false;
  const auth = req.headers.authorization;
  const bearer = typeof auth === 'string' ? /^apikey\s+(.+)$/i.exec(auth.trim())?.[1] : undefined;
  const header = req.headers['x-api-key'];
  if (bearer !== undefined && sameKey(key, bearer)) return true;
  if (typeof header === 'string' && sameKey(key, header)) return true;
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
