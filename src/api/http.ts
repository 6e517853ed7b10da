// The server HTTP API: `POST /api/<method>` (and legacy `POST /api` with {method, params}), API key
// auth, and Centrifugo's two error modes. Without a configured key every call is refused (401).
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stringify } from '../dialects/native/codec.js';
import { readBody } from '../server/body.js';
import { Errors } from '../dialects/native/codes.js';
import { afterFlush } from '../hub/outbox.js';
import { apiMethods, toApiError, type ApiContext } from './methods.js';

/** The path prefix of the server API. */
export const API_PATH = '/api';

const TRANSPORT_STATUS: Record<number, number> = { 100: 500, 102: 404, 104: 404, 107: 400, 108: 400, 112: 416, 113: 409 };

/** Handles one API request: `path` (without its query) is /api or starts with /api/; `query` is the raw query string. */
export async function handleApiRequest(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, path: string, query = ''): Promise<void> {
  const { http_api } = ctx.config;
  if (!http_api.insecure && !authorized(http_api.key, req, query)) return send(res, 401, '', 'text/plain');
  if (req.method !== 'POST') {
    res.setHeader('Allow', 'POST');
    return send(res, 405, 'method not allowed\n', 'text/plain');
  }
  let name = path.slice(API_PATH.length + 1);
  let body: Buffer | undefined;
  try {
    body = await readBody(req, http_api.max_body_size);
  } catch {
    return send(res, 400, 'unreadable request body\n', 'text/plain');
  }
  if (!body) {
    res.setHeader('Connection', 'close');
    return send(res, 413, 'request body too large\n', 'text/plain');
  }
  let params: unknown;
  try {
    params = body.length ? JSON.parse(body.toString('utf8')) : {};
  } catch {
    return send(res, 400, 'invalid JSON body\n', 'text/plain');
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    return send(res, 400, 'the body must be a JSON object\n', 'text/plain');
  }
  if (name === '') {
    // Legacy form: POST /api {"method": "...", "params": {...}}.
    const legacy = params as Record<string, unknown>;
    name = typeof legacy.method === 'string' ? legacy.method : '';
    params = typeof legacy.params === 'object' && legacy.params !== null ? legacy.params : {};
  }
  const method = Object.hasOwn(apiMethods, name) ? apiMethods[name] : undefined;
  if (!method) return send(res, 404, 'unknown API method\n', 'text/plain');
  const transportErrors =
    http_api.error_mode === 'transport' || String(req.headers['x-centrifugo-error-mode'] ?? '').toLowerCase() === 'transport';
  try {
    const result = await method(ctx, params as Record<string, unknown>);
    // batch answers {replies: [...]} at the top level; everything else is wrapped in `result`.
    const out = name === 'batch' ? result : { result };
    ctx.countCall?.(name, 'ok');
    // Subscribers first: the reply goes out after the deliveries the call queued.
    const body = stringify(out);
    return afterFlush(() => send(res, 200, body, 'application/json'));
  } catch (err) {
    const error = toApiError(err);
    ctx.countCall?.(name, String(error.code));
    if (error.code === Errors.internal.code) ctx.log.error({ err, method: name }, 'API method failed');
    if (transportErrors) return send(res, TRANSPORT_STATUS[error.code] ?? 500, stringify(error), 'application/json');
    return send(res, 200, stringify({ error }), 'application/json');
  }
}

function authorized(key: string, req: IncomingMessage, query: string): boolean {
  if (!key) return false;
  let given = req.headers['x-api-key'];
  if (typeof given !== 'string') {
    const auth = req.headers.authorization;
    const m = typeof auth === 'string' ? /^apikey\s+(.+)$/i.exec(auth.trim()) : null;
    given = m ? m[1] : (query && new URLSearchParams(query).get('api_key')) || undefined;
  }
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

function send(res: ServerResponse, status: number, body: string, type: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
