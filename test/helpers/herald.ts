// Test fixtures: real Herald nodes on port 0, real centrifuge-js clients, signed tokens.
import { ReadableStream } from 'node:stream/web';
import { Centrifuge, type Subscription } from 'centrifuge';
import { EventSource } from 'eventsource';
import { SignJWT } from 'jose';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import assert from 'node:assert/strict';
import { createHerald, HeraldApi, HeraldError, loadConfig, type Herald, type HeraldConfigInput } from '../../src/index.js';

/** The HMAC secret test nodes use. */
export const SECRET = 'test-secret-0123456789';
/** The API key test nodes use. */
export const API_KEY = 'test-api-key';

/** A running test node. */
export interface TestNode {
  readonly herald: Herald;
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  readonly api: HeraldApi;
  /** centrifuge-js clients made by `client()` for this node: disconnected by `close()`. */
  readonly clients: Set<Centrifuge>;
  /** Disconnects the node's clients (so none keeps reconnecting), then closes the node. */
  close(): Promise<void>;
}

/** Config shared by the tests: port 0, quiet logs, HMAC tokens, an API key, and channels opened per test. */
export function testConfig(extra: HeraldConfigInput = {}): HeraldConfigInput {
  const base: HeraldConfigInput = {
    address: '127.0.0.1',
    port: 0,
    log_level: 'silent',
    client: { token: { hmac_secret_key: SECRET } },
    http_api: { key: API_KEY },
  };
  return merge(base, extra);
}

/** Starts a Herald node on a free port (logging to `logger` when given, otherwise silent). */
export async function startNode(extra: HeraldConfigInput = {}, logger?: Logger): Promise<TestNode> {
  const herald = createHerald({ config: loadConfig({ values: testConfig(extra) }), logger });
  await herald.start();
  const port = herald.port;
  const clients = new Set<Centrifuge>();
  return {
    herald,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/connection/websocket`,
    api: new HeraldApi(`http://127.0.0.1:${port}`, API_KEY),
    clients,
    close: () => {
      for (const c of clients) c.disconnect();
      clients.clear();
      return herald.close();
    },
  };
}

/** Signs a token with the test secret (HS256). `exp` in seconds from now when given as `expIn`. */
export async function sign(claims: Record<string, unknown>, opts: { expIn?: number; secret?: string } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (opts.expIn !== undefined) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + opts.expIn);
  return jwt.sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

/** A centrifuge-js client for a node (not yet connected). */
export function client(node: TestNode, opts: ConstructorParameters<typeof Centrifuge>[1] = {}): Centrifuge {
  const c = new Centrifuge(node.wsUrl, { websocket: WebSocket, minReconnectDelay: 50, maxReconnectDelay: 300, ...opts });
  node.clients?.add(c);
  return c;
}

/** Collects a subscription's publications. */
export function collect(sub: Subscription): unknown[] {
  const got: unknown[] = [];
  sub.on('publication', (ctx) => got.push(ctx.data));
  return got;
}

/** Waits until `check` is true (polling), or fails after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves with the first emission of an event. */
export function once<T = unknown>(emitter: { once(event: string, fn: (arg: T) => void): unknown }, event: string, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), ms);
    emitter.once(event, (arg: T) => {
      clearTimeout(timer);
      resolve(arg);
    });
  });
}

function merge<T>(a: T, b: unknown): T {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null || Array.isArray(b)) return (b ?? a) as T;
  const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
  for (const [k, v] of Object.entries(b)) out[k] = k in out ? merge(out[k], v) : v;
  return out as T;
}

/** Records every emission of the named events, in order, as [event, ctx] pairs. */
export function record(emitter: { on(event: string, fn: (arg: any) => void): unknown }, ...events: string[]): Array<[string, any]> {
  const log: Array<[string, any]> = [];
  for (const e of events) emitter.on(e, (ctx: any) => log.push([e, ctx]));
  return log;
}

/** Config of a namespace open to every client (subscribe, publish, history), with recovery when `history`. */
export function openNamespace(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> & { name: string } {
  return {
    name,
    allow_subscribe_for_client: true,
    allow_subscribe_for_anonymous: true,
    ...extra,
  };
}

/** A token for `user` (HS256, test secret), valid for an hour unless `expIn` says otherwise. */
export function userToken(user: string, claims: Record<string, unknown> = {}, expIn = 3600): Promise<string> {
  return sign({ sub: user, ...claims }, { expIn });
}

/**
 * A centrifuge-js client over HTTP streaming or SSE (Node's fetch, the npm eventsource) with its
 * stream on `streamUrl` and its commands posted to `emulationUrl` (the same node unless given).
 */
export function emulatedClient(
  transport: 'http_stream' | 'sse',
  streamUrl: string,
  opts: ConstructorParameters<typeof Centrifuge>[1] = {},
  emulationUrl = streamUrl,
): Centrifuge {
  return new Centrifuge([{ transport, endpoint: `${streamUrl}/connection/${transport}` }], {
    fetch,
    eventsource: EventSource,
    readableStream: ReadableStream,
    emulationEndpoint: `${emulationUrl}/emulation`,
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    ...opts,
  });
}

/** A WebSocket class that sends `headers` with its upgrade, as a browser sends its cookies. */
export function withHeaders(headers: Record<string, string>): typeof WebSocket {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers });
    }
  } as unknown as typeof WebSocket;
}

/** How many connections of `dialect` the node's `limit` refused, as its metrics say (metrics.enabled). */
export async function refusedCount(node: TestNode, dialect: string, limit: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return Number(new RegExp(`^herald_connections_refused_total\\{dialect="${dialect}",limit="${limit}"\\} (\\S+)$`, 'm').exec(text)?.[1]);
}

/** The message of the configuration error `fn` throws (the test fails if it throws none, or another error). */
export function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HeraldError);
    assert.equal(err.code, 'HERALD_ERR_CONFIG');
    return err.message;
  }
  assert.fail('expected a configuration error');
}
