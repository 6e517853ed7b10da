// HTTP streaming across nodes over one real Redis: a client's stream on node A and its commands
// posted to node B's `/emulation` (no sticky sessions): B passes them to A through Redis; past the
// bound on waiting commands, those passed on end the session (3013), and those posted to its own node
// wait their turn.
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { HeraldApi } from '../../src/index.js';
import { API_KEY, emulatedClient, record, sign, startNode, until, type TestNode } from '../helpers/herald.js';
import { spawnHerald, type HeraldProcess } from '../helpers/process.js';
import { openHttpStream, sleep } from '../helpers/raw.js';
import { RedisProcess } from '../helpers/redis.js';
import { earlierNodeKeys } from '../../src/engine/redis-names.js';

let redis: RedisProcess;
let a: HeraldProcess;
let b: HeraldProcess;

before(async () => {
  redis = await RedisProcess.start();
  const config = {
    engine: { type: 'redis' as const, redis: { url: redis.url } },
    client: { http_stream: { enabled: true }, sse: { enabled: true }, ping_interval: '1s', pong_timeout: '700ms' },
    channel: { namespaces: [{ name: 'room', allow_subscribe_for_client: true, allow_publish_for_client: true, presence: true, allow_presence_for_subscriber: true }] },
  };
  [a, b] = await Promise.all([spawnHerald(config), spawnHerald(config)]);
});
after(async () => {
  await Promise.all([a?.kill(), b?.kill()]);
  await redis?.stop();
});

for (const transport of ['http_stream', 'sse'] as const) {
  test(`${transport} on node A with its commands sent to node B: subscribe, publish, presence and pongs reach A`, async () => {
    const c = emulatedClient(transport, a.url, { token: await sign({ sub: `cross-${transport}` }) }, b.url);
    try {
      c.connect();
      await c.ready(5000);
      const reconnects = record(c, 'connecting');
      const sub = c.newSubscription(`room:${transport}`);
      const got: unknown[] = [];
      sub.on('publication', (ctx) => got.push(ctx.data));
      sub.subscribe();
      await sub.ready(5000);
      await sub.publish({ from: 'client' });
      await new HeraldApi(b.url, API_KEY).publish(`room:${transport}`, { from: 'api on B' });
      await until(() => got.length === 2, 5000, 'both publications');
      assert.deepEqual(got, [{ from: 'client' }, { from: 'api on B' }]);
      assert.deepEqual(await sub.presenceStats(), { numClients: 1, numUsers: 1 });
      // Pings every 1 s from A, answered through B within 0.7 s.
      await sleep(2500);
      assert.deepEqual(reconnects, []);
      assert.equal(c.state, 'connected');
    } finally {
      c.disconnect();
    }
  });
}

test('/emulation answers 404 for a node that is not alive (reading the live nodes at most once a second), and 204 for a live node\'s unknown session', async () => {
  const post = (node: string) =>
    fetch(`${b.url}/emulation`, { method: 'POST', body: JSON.stringify({ session: 'no-such-session', node, data: '{}' }) }).then((r) => r.status);
  assert.equal(await post('no-such-node'), 404);
  // Unknown nodes are not looked up in Redis once per request: at most once a second.
  const redisClient = redis.client();
  try {
    const stats = async () => Number(/cmdstat_zrangebyscore:calls=(\d+)/.exec(await redisClient.info('commandstats'))?.[1] ?? 0);
    const before = await stats();
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) statuses.push(await post(`random-${i}`));
    assert.deepEqual(new Set(statuses), new Set([404]));
    const reads = (await stats()) - before;
    assert.ok(reads <= 2, `${reads} reads of the live nodes for 100 requests`);
  } finally {
    redisClient.disconnect();
  }
  const info = await new HeraldApi(a.url, API_KEY).info();
  const uids = info.nodes.map((n) => n.uid as string);
  assert.equal(uids.length, 2);
  for (const uid of uids) assert.equal(await post(uid), 204);
});

test('commands passed on from another node while too many of the session\'s wait end the session with 3013, so the client reconnects instead of waiting', async () => {
  // A JWKS endpoint that never answers holds the session's first command (a refresh whose token it
  // must check) for 5 s, so the commands after it wait.
  const held: ServerResponse[] = [];
  const jwks = createServer((_req, res) => held.push(res));
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const config = {
    engine: { type: 'redis' as const, redis: { url: redis.url } },
    client: {
      allow_anonymous_connect_without_token: true,
      http_stream: { enabled: true },
      token: { jwks_public_endpoint: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks` },
    },
  };
  const [x, y] = await Promise.all([startNode(config), startNode(config)]);
  try {
    const { first, more } = await openHttpStream(x.url, JSON.stringify({ id: 1, connect: {} }));
    const { session, node } = first.connect as { session: string; node: string };
    let text = '';
    const post = (on: TestNode, data: string) =>
      fetch(`${on.url}/emulation`, { method: 'POST', body: JSON.stringify({ session, node, data }) }).then((r) => r.status);
    const unsigned = `${Buffer.from('{"alg":"RS256","kid":"k1"}').toString('base64url')}.${Buffer.from('{"sub":""}').toString('base64url')}.c2ln`;
    assert.equal(await post(x, JSON.stringify({ id: 2, refresh: { token: unsigned } })), 204);
    await until(() => held.length === 1, 3000, 'the JWKS request');
    for (let i = 0; i < 255; i++) assert.equal(await post(x, JSON.stringify({ id: i + 3, presence_stats: { channel: 'c' } })), 204);
    // On the session's own node a request past the bound is held, not refused (Centrifugo takes them all).
    let heldStatus: number | undefined;
    const heldRequest = post(x, JSON.stringify({ id: 300, presence_stats: { channel: 'c' } })).then((status) => (heldStatus = status));
    await sleep(200);
    assert.equal(heldStatus, undefined, 'held while the commands before it wait');
    // Node y cannot know: it answers 204 and passes the command on; x ends the session.
    assert.equal(await post(y, JSON.stringify({ id: 301, presence_stats: { channel: 'c' } })), 204);
    const started = Date.now();
    while (!text.endsWith('\n') || !text.includes('"disconnect"')) text = await more();
    assert.ok(Date.now() - started < 4000, 'before the JWKS request times out');
    assert.deepEqual(JSON.parse(text.trim().split('\n').at(-1)!), { push: { disconnect: { code: 3013, reason: 'too many requests' } } });
    // The held request is answered once the stream has ended.
    assert.equal(await heldRequest, 204);
  } finally {
    for (const res of held) res.destroy();
    jwks.close();
    await Promise.all([x.close(), y.close()]);
  }
});

/**
 * An HTTP streaming session on its own node with 256 commands waiting: the first, an RPC, waits on a
 * backend (`held`) that answers when the test says, and 255 more behind it (ids 3 to 257).
 */
async function blockedSession(client: Record<string, unknown> = {}) {
  const held: ServerResponse[] = [];
  const backend = createServer((_req, res) => held.push(res));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const x = await startNode({
    client: {
      allow_anonymous_connect_without_token: true,
      http_stream: { enabled: true },
      proxy: { rpc: { endpoint: `http://127.0.0.1:${(backend.address() as AddressInfo).port}/rpc`, timeout: '10s' } },
      ...client,
    },
  });
  const { first, more } = await openHttpStream(x.url, JSON.stringify({ id: 1, connect: {} }));
  const { session, node } = first.connect as { session: string; node: string };
  const post = (data: string) => fetch(`${x.url}/emulation`, { method: 'POST', body: JSON.stringify({ session, node, data }) }).then((r) => r.status);
  assert.equal(await post(JSON.stringify({ id: 2, rpc: { method: 'slow', data: {} } })), 204);
  await until(() => held.length === 1, 3000, 'the RPC request');
  for (let i = 0; i < 255; i++) assert.equal(await post(JSON.stringify({ id: i + 3, presence_stats: { channel: 'c' } })), 204);
  const close = async () => {
    for (const res of held) res.destroy();
    backend.close();
    await x.close();
  };
  return { held, more, post, close };
}

test("on the session's own node, /emulation requests past the bound are held and taken in order once the session catches up; a pong is taken at once", async () => {
  const { held, more, post, close } = await blockedSession({ ping_interval: '1s', pong_timeout: '1s' });
  try {
    const statuses: number[] = [];
    const later = [300, 301, 302].map((id) => post(JSON.stringify({ id, presence_stats: { channel: 'c' } })).then((s) => statuses.push(s)));
    // A ping comes (an empty push); its pong is taken at once, however many commands wait, and
    // the session is not closed for want of it (3012) while they do.
    let text = '';
    for (let i = 0; i < 100 && !text.split('\n').includes('{}'); i++) text = await more();
    assert.equal(await Promise.race([post('{}'), sleep(1000).then(() => 'held')]), 204, 'a pong is taken at once');
    await sleep(300);
    assert.deepEqual(statuses, [], 'held');
    held[0]!.writeHead(200, { 'Content-Type': 'application/json' }).end('{"result":{"data":{"ok":true}}}');
    await Promise.all(later);
    assert.deepEqual(statuses, [204, 204, 204]);
    for (let i = 0; i < 1000 && !text.includes('"id":302') && !text.includes('"disconnect"'); i++) text = await more();
    const ids = text
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id?: number }).id)
      .filter((id) => id !== undefined);
    assert.ok(!text.includes('"disconnect"'), text.slice(-200));
    assert.deepEqual(ids.slice(0, 3), [1, 2, 3]);
    assert.deepEqual(ids.slice(-4), [257, 300, 301, 302], 'in the order sent');
  } finally {
    await close();
  }
});

test('past the bound, an /emulation {} no ping awaits is held like any command (not queued at once without bound)', async () => {
  const { post, close } = await blockedSession();
  try {
    assert.equal(await Promise.race([post('{}'), sleep(500).then(() => 'held')]), 'held');
  } finally {
    await close();
  }
});

test("commands passed on go to their node's own control channel, not to every node; a node that announces no channel of its own (an older version) is sent them on the shared one", async () => {
  const watcher = redis.client();
  const seenOn: string[] = [];
  watcher.on('pmessage', (_pattern: string, channel: string, message: string) => {
    if (message.includes('"emulation"')) seenOn.push(channel);
  });
  await watcher.psubscribe('herald.control*');
  try {
    const c = emulatedClient('http_stream', a.url, { token: await sign({ sub: 'own-channel' }) }, b.url);
    try {
      c.connect();
      await c.ready(5000);
      const sub = c.newSubscription('room:own');
      sub.subscribe();
      await sub.ready(5000);
    } finally {
      c.disconnect();
    }
    const info = await new HeraldApi(a.url, API_KEY).info();
    assert.equal(info.nodes.some((n) => 'node_channel' in n), false, "not in the API's info");
    await until(() => seenOn.length > 0, 3000, 'a command passed on');
    const own = new Set(seenOn);
    assert.equal(own.has('herald.control'), false, `never on the shared channel: ${[...own].join(', ')}`);
    for (const ch of own) assert.match(ch, /^herald\.control\.[0-9a-f-]{36}$/);

    // An older node: announced without the flag, under the names the builds before it used.
    const old = 'older-node-0000';
    const w = redis.client();
    try {
      await w.zadd(earlierNodeKeys('herald').expiries, Date.now() + 60_000, old);
      await w.hset(earlierNodeKeys('herald').info, old, JSON.stringify({ uid: old, name: 'old', version: '0' }));
    } finally {
      w.disconnect();
    }
    seenOn.length = 0;
    await sleep(1100); // B looks the live nodes up again after a second
    const status = await fetch(`${b.url}/emulation`, { method: 'POST', body: JSON.stringify({ session: 's', node: old, data: '{}' }) }).then((r) => r.status);
    assert.equal(status, 204);
    await until(() => seenOn.length > 0, 3000, 'the command for the older node');
    assert.deepEqual(seenOn, ['herald.control']);
  } finally {
    watcher.disconnect();
  }
});
