// The proxies' part of the configuration schema: one proxy's keys (endpoint, timeout, headers, status
// transforms), the named proxies, and the check that a namespace's chosen proxy exists.
import { z } from 'zod';
import { duration } from './duration.js';
import { DEFAULT_PROXY_NAME, flag } from './namespaces.js';

/** Headers a proxy call sets itself (or the HTTP connection does): not for `static_headers`. */
const FIXED_HEADERS = new Set(['host', 'content-type', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect']);
export const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name');
export const headerNames = z.array(headerName).default([]);
/** A close reason or error message a status transform sends: ASCII, as long as a WebSocket close frame carries. */
const transformText = z
  .string()
  .regex(/^[\x20-\x7e]*$/, 'must be printable ASCII')
  .max(123, 'must be at most 123 characters (a WebSocket close reason)')
  .default('');
/** One `status_to_code_transforms` entry: an HTTP status, and the error or the disconnect it becomes. */
const statusTransform = z
  .object({
    status_code: z
      .number()
      .int()
      .min(100)
      .max(599)
      .refine((code) => code !== 200, { message: 'must not be 200 (a 200 is the backend\'s answer, never transformed)' }),
    to_error: z
      .object({ code: z.number().int().min(0).max(4294967295).default(0), message: transformText, temporary: flag() })
      .strict()
      .prefault({}),
    to_disconnect: z.object({ code: z.number().int().min(0).default(0), reason: transformText }).strict().prefault({}),
  })
  .strict()
  .superRefine((t, ctx) => {
    const error = t.to_error.code > 0;
    const disconnect = t.to_disconnect.code > 0;
    if (error === disconnect) ctx.addIssue({ code: 'custom', path: [], message: 'set to_error.code or to_disconnect.code, one of them' });
    // The same bounds as a backend's own answers (proxy.ts).
    if (error && t.to_error.code < 100) ctx.addIssue({ code: 'custom', path: ['to_error', 'code'], message: 'must be 100 or more' });
    if (disconnect && (t.to_disconnect.code < 3000 || t.to_disconnect.code > 4999)) {
      ctx.addIssue({ code: 'custom', path: ['to_disconnect', 'code'], message: 'must be 3000–4999 (a close code the protocol carries)' });
    }
  });
/**
 * A proxy to the application's backend (Centrifugo's connect, refresh, RPC, subscribe, publish and
 * sub_refresh proxies): off while `endpoint` is empty, or when `enabled` is false.
 */
const proxyShape = {
  // Centrifugo v6's switch: a proxy is on when its endpoint is set, unless this says false.
  enabled: z.boolean().optional(),
  endpoint: z.string().regex(/^(https?:\/\/\S+)?$/, 'must be an http(s) URL').default(''),
  timeout: duration().prefault('1s'),
  http_headers: headerNames,
  emulated_headers: headerNames,
  // Centrifugo's: the connection's `meta` (its token's or the connect proxy's) goes with each call.
  include_connection_meta: flag(),
  // Centrifugo v6's: headers sent with every call, over any client header of the same name.
  http: z
    .object({
      static_headers: z
        .record(headerName, z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'must be a header value (Latin-1 text, no control characters)'))
        .default({})
        .superRefine((headers, ctx) => {
          const seen = new Set<string>();
          for (const name of Object.keys(headers)) {
            const lower = name.toLowerCase();
            if (FIXED_HEADERS.has(lower)) ctx.addIssue({ code: 'custom', path: [name], message: `must not be one the call sets itself (${[...FIXED_HEADERS].join(', ')})` });
            if (seen.has(lower)) ctx.addIssue({ code: 'custom', path: [name], message: 'given twice (header names are not case-sensitive)' });
            seen.add(lower);
          }
        }),
      // Centrifugo v6's: a backend's HTTP status turned into the error or disconnect the client gets.
      status_to_code_transforms: z
        .array(statusTransform)
        .default([])
        .superRefine((list, ctx) => {
          const seen = new Set<number>();
          list.forEach((t, i) => {
            if (seen.has(t.status_code)) ctx.addIssue({ code: 'custom', path: [i, 'status_code'], message: `${t.status_code} is given twice (the first entry would win)` });
            seen.add(t.status_code);
          });
        }),
    })
    .strict()
    .prefault({}),
};
const offWhenDisabled = <P extends { enabled?: boolean | undefined; endpoint: string }>(p: P): P => (p.enabled === false ? { ...p, endpoint: '' } : p);
export const proxySchema = z.object(proxyShape).strict().transform(offWhenDisabled);
/** A named proxy (Centrifugo's `proxies`), which namespaces pick with `subscribe_proxy_name` and the like. */
export const namedProxySchema = z
  .object({ name: z.string().regex(/^[-a-zA-Z0-9_.]{2,}$/, 'letters, digits, "-", "_" and "." only, at least 2'), ...proxyShape })
  .strict()
  .transform(offWhenDisabled);


/**
 * A namespace that hands its decisions to a proxy needs that proxy: `default` (its section's own,
 * which must then have an endpoint, named `defaultKey` in the message) or one of `proxies` with an
 * endpoint. `path` is where the namespace's `enabledKey` and `nameKey` are.
 */
export function checkProxyChoice(
  ctx: z.RefinementCtx,
  named: ReadonlyMap<string, { endpoint: string }>,
  choice: { name: string; defaultEndpoint: string; defaultKey: string },
  path: Array<string | number>,
  enabledKey: string,
  nameKey: string,
): void {
  if (choice.name === DEFAULT_PROXY_NAME) {
    if (!choice.defaultEndpoint) ctx.addIssue({ code: 'custom', path: [...path, enabledKey], message: `needs ${choice.defaultKey}` });
  } else if (!named.get(choice.name)?.endpoint) {
    ctx.addIssue({ code: 'custom', path: [...path, nameKey], message: `no proxy named "${choice.name}" with an endpoint in proxies` });
  }
}
