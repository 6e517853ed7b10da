// The connect and RPC proxies against a real backend (a Node HTTP server in the test): who a client
// without a token is, its info, data, server-side subscriptions and expiry; the backend's errors and
// disconnects; a backend that fails or is slow; headers passed on (only those the config names);
// tokens still checked without the backend; RPC answered by the backend.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startBackend, type Backend, type BackendRequest } from '../helpers/backend.js';
import { client, once, openNamespace, record, startNode, until, userToken, withHeaders, type TestNode } from '../helpers/herald.js';
import { openHttpStream, sleep } from '../helpers/raw.js';

type Seen = BackendRequest;

/** The application's backend: answers with `reply(request)` (an object, or [status, text]). */
let reply: (seen: Seen) => unknown = () => ({ result: {} });
const seen: Seen[] = [];
let backend: Backend;
let backendUrl = '';
let node: TestNode;

before(async () => {
  backend = await startBackend((s) => reply(s), seen);
  const url = (backendUrl = backend.url);
  node = await startNode({
    client: {
      http_stream: { enabled: true },
      proxy: {
        connect: {
          endpoint: `${url}/connect`,
          timeout: '500ms',
          http_headers: ['Cookie', 'X-Real-IP', 'Authorization', 'Content-Type'],
          // Sent with every call, over any client header of the same name (Authorization is passed on too).
          http: { static_headers: { 'X-Gateway-Key': 'k3y', Authorization: 'Bearer gateway' } },
        },
        rpc: { endpoint: `${url}/rpc`, http_headers: ['Cookie'] },
      },
    },
    channel: { namespaces: [openNamespace('room', { presence: true, allow_presence_for_subscriber: true }), openNamespace('news')] },
  });
});
after(async () => {
  await node.close();
  backend.close();
});

test('connect proxy: the backend names the user (from the cookie passed on), its info, data, server-side subscriptions and expiry', async () => {
  seen.length = 0;
  // As text: the info holds a 64-bit integer that a JavaScript backend could not write.
  reply = (s) =>
    `{"result":{"user":${JSON.stringify(s.headers.cookie === 'session=abc' ? 'alice' : '')},"info":{"name":"Alice","id":12345678901234567890},` +
    `"data":{"welcome":true},"channels":["news:1"],"expire_at":${Math.floor(Date.now() / 1000) + 3600}}}`;
  const c = client(node, {
    websocket: withHeaders({ Cookie: 'session=abc', 'X-Real-IP': '10.1.2.3', 'X-Secret': 'not passed on', 'Content-Type': 'text/evil' }),
    data: { hello: 'backend' },
    // The SDK's emulated headers (in the connect command) join the request's.
    headers: { Authorization: 'Bearer t0ken', 'X-Other': 'not passed on' },
  });
  const connected = record(c, 'connected');
  const publications = record(c, 'publication');
  c.connect();
  await c.ready(3000);
  assert.deepEqual(connected[0]![1].data, { welcome: true });
  assert.equal(seen.length, 1);
  const req = seen[0]!;
  assert.equal(req.path, '/connect');
  assert.equal(req.headers['content-type'], 'application/json');
  assert.equal(req.headers['x-real-ip'], '10.1.2.3');
  assert.equal(req.headers['x-gateway-key'], 'k3y', 'a static header');
  assert.equal(req.headers.authorization, 'Bearer gateway', 'a static header wins over the client\'s');
  assert.equal(req.headers['x-secret'], undefined);
  assert.equal(req.headers['x-other'], undefined);
  assert.deepEqual(
    { ...req.body, client: typeof req.body.client },
    { client: 'string', transport: 'websocket', protocol: 'json', encoding: 'json', name: 'js', version: req.body.version, data: { hello: 'backend' } },
  );
  assert.equal(req.body.client, connected[0]![1].client);
  // The connection is alice's, with the backend's info kept as written (64-bit integer and all).
  const sub = c.newSubscription('room:1');
  sub.subscribe();
  await sub.ready(3000);
  const presence = await node.api.call('presence', { channel: 'room:1' });
  assert.match(JSON.stringify(presence), /"user":"alice"/);
  const info = await fetch(`${node.url}/api/presence`, { method: 'POST', headers: { 'X-API-Key': 'test-api-key' }, body: '{"channel":"room:1"}' }).then((r) => r.text());
  assert.match(info, /"conn_info":\{"name":"Alice","id":12345678901234567890\}/);
  // The server-side subscription from the backend's `channels`.
  await node.api.publish('news:1', 'extra');
  await until(() => publications.length === 1, 3000, 'the server-side publication');
  assert.deepEqual([publications[0]![1].channel, publications[0]![1].data], ['news:1', 'extra']);
  c.disconnect();
});

test('connect proxy: an error from the backend is the connect\'s error; a disconnect ends the connection with its code', async () => {
  reply = () => ({ error: { code: 1001, message: 'no session' } });
  const a = client(node);
  const aGone = new Promise<{ code: number; reason: string }>((r) => a.once('disconnected', r));
  a.connect();
  assert.deepEqual(await aGone.then((ctx) => [ctx.code, ctx.reason]), [1001, 'no session']);

  reply = () => ({ disconnect: { code: 4501, reason: 'banned' } });
  const b = client(node);
  const bGone = new Promise<{ code: number; reason: string }>((r) => b.once('disconnected', r));
  b.connect();
  assert.deepEqual(await bGone.then((ctx) => [ctx.code, ctx.reason]), [4501, 'banned']);
});

test('connect proxy: a backend that fails, answers garbage or is slower than the timeout is a temporary error; the client connects once it answers', async () => {
  for (const bad of [() => [500, 'oops'], () => 'not json', () => ({ result: { user: 42 } }), () => ({ result: { channels: 'x' } }), () => sleep(800).then(() => ({ result: {} }))]) {
    reply = bad;
    const c = client(node);
    const errors = record(c, 'error');
    c.connect();
    await until(() => errors.length >= 1, 3000, 'a connect error');
    assert.deepEqual([errors[0]![1].type, errors[0]![1].error.code, errors[0]![1].error.temporary], ['connect', 100, true]);
    assert.equal(c.state, 'connecting');
    reply = () => ({ result: { user: 'later' } });
    await c.ready(5000);
    c.disconnect();
  }
});

test('connect proxy over HTTP streaming: the headers of the request that opened the stream are passed on', async () => {
  seen.length = 0;
  reply = (s) => ({ result: { user: s.headers.cookie === 'session=stream' ? 'dave' : 'nobody' } });
  const { first, reader } = await openHttpStream(node.url, '{"id":1,"connect":{"data":{"x":1}}}', { Cookie: 'session=stream' });
  const connect = first.connect;
  assert.deepEqual([seen[0]!.body.transport, seen[0]!.body.data, seen[0]!.headers.cookie], ['http_stream', { x: 1 }, 'session=stream']);
  assert.equal(connect.client, seen[0]!.body.client);
  assert.equal(typeof connect.session, 'string');
  await reader.cancel();
});

test('connect proxy: null fields count as absent (as Go reads them); an expire_at already past is 110; odd codes are a failing backend', async () => {
  reply = () => ({ result: { user: 'nully', channels: null, subs: null, expire_at: null, b64info: null, info: null, data: null } });
  const a = client(node);
  a.connect();
  await a.ready(3000);
  a.disconnect();
  reply = () => ({ result: { user: 'late', expire_at: Math.floor(Date.now() / 1000) - 10 } });
  const b = client(node);
  const bGone = new Promise<{ code: number }>((r) => b.once('disconnected', r));
  b.connect();
  assert.equal((await bGone).code, 110);
  for (const odd of [{ disconnect: { code: 5000, reason: 'x' } }, { error: { code: 0, message: 'x' } }]) {
    reply = () => odd;
    const c = client(node);
    const errors = record(c, 'error');
    c.connect();
    await until(() => errors.length >= 1, 3000, 'a connect error');
    assert.equal(errors[0]![1].error.code, 100, JSON.stringify(odd));
    c.disconnect();
  }
});

test('connect proxy: at most 64 calls at once reach the backend; a burst of clients all connect', async () => {
  // A timeout long enough that no call is given up (a call given up still runs on the backend).
  const burst = await startNode({ client: { proxy: { connect: { endpoint: `${backendUrl}/connect`, timeout: '5s' } } } });
  let inFlight = 0;
  let most = 0;
  reply = async () => {
    most = Math.max(most, ++inFlight);
    await sleep(300);
    inFlight--;
    return { result: { user: 'burst' } };
  };
  try {
    const clients = Array.from({ length: 150 }, () => client(burst));
    for (const c of clients) c.connect();
    await Promise.all(clients.map((c) => c.ready(10_000)));
    assert.ok(most <= 64 && most >= 48, `${most} calls at once`);
  } finally {
    await burst.close();
  }
});

test('a client with a token is checked as before, without asking the backend', async () => {
  seen.length = 0;
  reply = () => ({ error: { code: 1001, message: 'should not be asked' } });
  const c = client(node, { token: await userToken('bob') });
  c.connect();
  await c.ready(3000);
  assert.equal(seen.length, 0);
  c.disconnect();
});

test('RPC proxy: an answer without a result is an empty one (a void call)', async () => {
  reply = (s) => (s.path === '/connect' ? { result: { user: 'void' } } : s.body.method === 'a' ? {} : { result: null });
  const c = client(node);
  c.connect();
  await c.ready(3000);
  assert.equal((await c.rpc('a', {})).data, undefined);
  assert.equal((await c.rpc('b', {})).data, undefined);
  c.disconnect();
});

test('RPC proxy: a slow call does not hold back the pong of a ping that came meanwhile', async () => {
  const slow = await startNode({
    client: { ping_interval: '1s', pong_timeout: '700ms', proxy: { connect: { endpoint: `${backendUrl}/connect` }, rpc: { endpoint: `${backendUrl}/rpc`, timeout: '5s' } } },
  });
  try {
    reply = async (s) => (s.path === '/connect' ? { result: { user: 'slow' } } : (await sleep(2500), { result: { data: 'late' } }));
    const c = client(slow);
    c.connect();
    await c.ready(3000);
    const events = record(c, 'connecting', 'disconnected');
    assert.equal((await c.rpc('wait', {})).data, 'late');
    assert.deepEqual(events, []);
    c.disconnect();
  } finally {
    await slow.close();
  }
});

test('RPC proxy: the backend answers the client\'s rpc with its data, or an error, or a disconnect', async () => {
  reply = (s) => (s.path === '/connect' ? { result: { user: 'carol' } } : { result: { data: { method: s.body.method, got: s.body.data, user: s.body.user, cookie: s.headers.cookie ?? null } } });
  const c = client(node, { websocket: withHeaders({ Cookie: 'session=xyz' }) });
  c.connect();
  await c.ready(3000);
  const res = await c.rpc('sum', { a: 1, b: 2 });
  assert.deepEqual(res.data, { method: 'sum', got: { a: 1, b: 2 }, user: 'carol', cookie: 'session=xyz' });
  const body = seen.at(-1)!.body;
  assert.deepEqual([body.transport, body.client, body.protocol], ['websocket', c['_client'], 'json']);
  reply = () => ({ error: { code: 1002, message: 'no such sum' } });
  await assert.rejects(c.rpc('sum', {}), (e: { code: number; message: string }) => e.code === 1002 && e.message === 'no such sum');
  reply = () => [502, 'bad gateway'];
  await assert.rejects(c.rpc('sum', {}), (e: { code: number }) => e.code === 100);
  reply = () => ({ disconnect: { code: 4502, reason: 'rpc says bye' } });
  const gone = new Promise<{ code: number }>((r) => c.once('disconnected', r));
  void c.rpc('sum', {}).catch(() => undefined);
  assert.equal((await gone).code, 4502);
});

test('proxy endpoints must be http(s) URLs; header names must be header names; timeouts > 0, the connect proxy\'s under client.stale_close_delay', async () => {
  await assert.rejects(startNode({ client: { proxy: { connect: { endpoint: 'http://x', timeout: '10s' } } } }), /client\.proxy\.connect\.timeout/);
  await assert.rejects(startNode({ client: { proxy: { rpc: { endpoint: 'http://x', timeout: 0 } } } }), /client\.proxy\.rpc\.timeout/);
  // Without an endpoint the proxy is off, and its timeout no matter.
  const off = await startNode({ client: { stale_close_delay: '300ms' } });
  await off.close();
  await assert.rejects(startNode({ client: { proxy: { connect: { endpoint: 'ftp://x' } } } }), /client\.proxy\.connect\.endpoint/);
  await assert.rejects(startNode({ client: { proxy: { rpc: { http_headers: ['bad header'] } } } }), /client\.proxy\.rpc\.http_headers/);
  await assert.rejects(
    startNode({ client: { proxy: { rpc: { http: { static_headers: { 'X-A': 'line\nbreak' } } } } } }),
    /client\.proxy\.rpc\.http\.static_headers\.X-A: must be a header value/,
  );
  for (const [headers, message] of [
    [{ Host: 'evil.example' }, /static_headers\.Host: must not be one the call sets itself/],
    [{ 'Transfer-Encoding': 'chunked' }, /static_headers\.Transfer-Encoding: must not be one/],
    [{ 'X-A': 'bell\x07' }, /static_headers\.X-A: must be a header value/],
    [{ 'X-A': 'euro €' }, /static_headers\.X-A: must be a header value/],
    [{ 'X-A': '1', 'x-a': '2' }, /static_headers\.x-a: given twice/],
  ] as const) {
    await assert.rejects(startNode({ client: { proxy: { rpc: { http: { static_headers: headers } } } } }), message);
  }
});

test('http.status_to_code_transforms: a status the operator named becomes its error or disconnect (connect, RPC); other statuses stay a failing backend', async () => {
  const transforms = [
    { status_code: 403, to_disconnect: { code: 4501, reason: 'forbidden' } },
    { status_code: 404, to_error: { code: 404, message: 'not found' } },
    { status_code: 429, to_error: { code: 429, message: 'slow down', temporary: true } },
  ];
  const n = await startNode({
    client: {
      proxy: {
        connect: { endpoint: `${backendUrl}/connect`, http: { status_to_code_transforms: transforms } },
        rpc: { endpoint: `${backendUrl}/rpc`, http: { status_to_code_transforms: transforms } },
      },
    },
  });
  try {
    reply = () => [403, 'no'];
    const banned = client(n);
    const gone = once<{ code: number; reason: string }>(banned, 'disconnected', 3000);
    banned.connect();
    assert.deepEqual(await gone.then((ctx) => [ctx.code, ctx.reason]), [4501, 'forbidden']);

    // A permanent error ends the connection attempt (the SDK reports it as its disconnect)...
    reply = () => [404, 'whatever'];
    const missing = client(n);
    const refused = once<{ code: number; reason: string }>(missing, 'disconnected', 3000);
    missing.connect();
    assert.deepEqual(await refused.then((ctx) => [ctx.code, ctx.reason]), [404, 'not found']);
    // ...a temporary one, or a status no transform names (error 100), is retried.
    for (const [status, code] of [[429, 429], [500, 100]] as const) {
      reply = () => [status, 'whatever'];
      const c = client(n);
      const errors = record(c, 'error');
      c.connect();
      await until(() => errors.length >= 1, 3000, `a connect error for HTTP ${status}`);
      assert.deepEqual([errors[0]![1].type, errors[0]![1].error.code, errors[0]![1].error.temporary], ['connect', code, true]);
      assert.equal(c.state, 'connecting');
      c.disconnect();
    }

    reply = (s) => (s.path === '/connect' ? { result: { user: 'u' } } : [404, 'no such method']);
    const c = client(n);
    c.connect();
    await c.ready(3000);
    await assert.rejects(c.rpc('missing', {}), (e: any) => e.code === 404 && e.message === 'not found');
    reply = (s) => (s.path === '/connect' ? { result: { user: 'u' } } : [403, 'no']);
    const rpcGone = once<{ code: number }>(c, 'disconnected', 3000);
    void c.rpc('sum', {}).catch(() => undefined);
    assert.equal((await rpcGone).code, 4501);
  } finally {
    await n.close();
  }
});

test('http.status_to_code_transforms are checked at load: one of error or disconnect, codes the protocol carries, short ASCII text', async () => {
  const bad = (t: Record<string, unknown>) => startNode({ client: { proxy: { rpc: { http: { status_to_code_transforms: [t as never] } } } } });
  await assert.rejects(bad({ status_code: 404 }), /status_to_code_transforms\.0: set to_error\.code or to_disconnect\.code, one of them/);
  await assert.rejects(bad({ status_code: 404, to_error: { code: 404 }, to_disconnect: { code: 4000 } }), /set to_error\.code or to_disconnect\.code, one of them/);
  await assert.rejects(bad({ to_error: { code: 404 } }), /status_to_code_transforms\.0\.status_code/);
  await assert.rejects(bad({ status_code: 404, to_error: { code: 42 } }), /to_error\.code: must be 100 or more/);
  await assert.rejects(bad({ status_code: 403, to_disconnect: { code: 1000 } }), /to_disconnect\.code: must be 3000–4999/);
  await assert.rejects(bad({ status_code: 403, to_disconnect: { code: 4000, reason: 'é' } }), /reason: must be printable ASCII/);
  await assert.rejects(bad({ status_code: 403, to_error: { code: 400, message: 'x'.repeat(124) } }), /message: must be at most 123 characters/);
  await assert.rejects(bad({ status_code: 200, to_error: { code: 400 } }), /status_code: must not be 200/);
  await assert.rejects(bad({ status_code: 404, to_error: { code: 2 ** 32 } }), /to_error\.code/);
  await assert.rejects(
    startNode({ client: { proxy: { rpc: { http: { status_to_code_transforms: [{ status_code: 404, to_error: { code: 404 } }, { status_code: 404, to_error: { code: 405 } }] } } } } }),
    /status_to_code_transforms\.1\.status_code: 404 is given twice/,
  );
});
