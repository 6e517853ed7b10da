// A connection's meta (Centrifugo's): a connection token's `meta` claim or the connect proxy result's
// `meta`, replaced by a refreshed token's or the refresh proxy result's, kept as written and never
// sent to clients; it goes with the calls of the proxies that have include_connection_meta.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startBackend, type Backend, type BackendRequest } from '../helpers/backend.js';
import { SECRET, startNode, until } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';

let reply: (seen: BackendRequest) => unknown = () => ({ result: {} });
const seen: BackendRequest[] = [];
let backend: Backend;

before(async () => {
  backend = await startBackend((s) => reply(s), seen);
});
after(() => backend.close());

const BIG = '{"org_id":12345678901234567890}';

/** An HS256 token whose payload is `payload` as written (a 64-bit integer in it stays one). */
function rawToken(payload: string): string {
  const enc = (text: string) => Buffer.from(text).toString('base64url');
  const head = `${enc('{"alg":"HS256","typ":"JWT"}')}.${enc(payload)}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

/** The `meta` text of the last call to `path`, as the backend received it (undefined when none). */
function lastMeta(path: string): string | undefined {
  const req = [...seen].reverse().find((s) => s.path === path);
  assert.ok(req, `a call to ${path}`);
  return req.text.match(/"meta":(\{[^}]*\})/)?.[1];
}

async function subscribe(raw: RawClient, channel: string): Promise<void> {
  const reply = await raw.call('subscribe', { channel });
  assert.ok(reply.subscribe, JSON.stringify(reply));
}

test('the connect proxy result\'s meta goes, as written, with the calls of the proxies that include it, never to the client; the refresh proxy result\'s replaces it', async () => {
  const url = backend.url;
  const n = await startNode({
    client: {
      proxy: {
        connect: { endpoint: `${url}/connect` },
        refresh: { endpoint: `${url}/refresh`, include_connection_meta: true },
        rpc: { endpoint: `${url}/rpc` },
      },
    },
    channel: {
      proxy: { subscribe: { endpoint: `${url}/subscribe`, include_connection_meta: true } },
      namespaces: [{ name: 'org', subscribe_proxy_enabled: true }],
    },
  });
  try {
    seen.length = 0;
    reply = (s) => {
      if (s.path === '/connect') return `{"result":{"user":"ann","meta":${BIG},"expire_at":${Math.floor(Date.now() / 1000) + 1}}}`;
      if (s.path === '/refresh') return { result: { expire_at: Math.floor(Date.now() / 1000) + 3600, meta: { v: 2 } } };
      return { result: {} };
    };
    const raw = await RawClient.open(n.wsUrl);
    await raw.call('connect', {});
    assert.equal(seen.filter((s) => s.path === '/connect')[0]!.body.meta, undefined, 'the connect proxy is not sent one');
    await subscribe(raw, 'org:1');
    assert.equal(lastMeta('/subscribe'), BIG, 'as written, 64-bit integer and all');
    await raw.call('rpc', { method: 'm', data: {} });
    assert.equal(lastMeta('/rpc'), undefined, 'a proxy without include_connection_meta');
    // At the expiry the refresh proxy is asked (with the meta), and its result's meta replaces it.
    await until(() => seen.some((s) => s.path === '/refresh'), 5000, 'the refresh proxy call');
    assert.equal(lastMeta('/refresh'), BIG);
    await subscribe(raw, 'org:2');
    assert.equal(lastMeta('/subscribe'), '{"v":2}');
    assert.equal(raw.frames.some((f) => f.includes('meta') || f.includes('org_id')), false, 'nothing the client was sent carries it');
    raw.ws.close();
  } finally {
    await n.close();
  }
});

test("a connection token's meta claim likewise (a refreshed token's replaces it; Centrifugo has no b64meta)", async () => {
  const n = await startNode({
    channel: {
      proxy: { subscribe: { endpoint: `${backend.url}/subscribe`, include_connection_meta: true } },
      namespaces: [{ name: 'org', subscribe_proxy_enabled: true }],
    },
  });
  try {
    seen.length = 0;
    reply = () => ({ result: {} });
    const raw = await RawClient.open(n.wsUrl);
    await raw.call('connect', { token: rawToken(`{"sub":"bob","meta":${BIG}}`) });
    await subscribe(raw, 'org:1');
    assert.equal(lastMeta('/subscribe'), BIG);
    const refreshed = await raw.call('refresh', { token: rawToken('{"sub":"bob","meta":{"v":3}}') });
    assert.ok(refreshed.refresh, JSON.stringify(refreshed));
    await subscribe(raw, 'org:2');
    assert.equal(lastMeta('/subscribe'), '{"v":3}');
    raw.ws.close();

    const b64 = await RawClient.open(n.wsUrl);
    await b64.call('connect', { token: rawToken(`{"sub":"carol","b64meta":"${Buffer.from('{"x":1}').toString('base64')}"}`) });
    await subscribe(b64, 'org:3');
    assert.equal(lastMeta('/subscribe'), undefined);
    b64.ws.close();
  } finally {
    await n.close();
  }
});
