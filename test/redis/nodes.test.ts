// Several Herald nodes over one real Redis: publications from any node or any Redis client reach
// every subscriber; API calls on connections reach every node; a killed node's clients move to
// another node and recover with zero loss.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { HeraldApi } from '../../src/index.js';
import { API_KEY, sign, until } from '../helpers/herald.js';
import { spawnHerald, TcpBalancer, type HeraldProcess } from '../helpers/process.js';
import { RedisProcess } from '../helpers/redis.js';
import { earlierNodeKeys } from '../../src/engine/redis-names.js';

const NAMESPACES = [
  { name: 'feed', allow_subscribe_for_client: true, history_size: 1000, history_ttl: '5m', force_recovery: true },
  { name: 'plain', allow_subscribe_for_client: true },
];

describe('nodes over one Redis', () => {
  let redis: RedisProcess;
  let a: HeraldProcess;
  let b: HeraldProcess;
  let apiA: HeraldApi;
  let apiB: HeraldApi;

  before(async () => {
    redis = await RedisProcess.start();
    const config = { engine: { type: 'redis' as const, redis: { url: redis.url } }, channel: { namespaces: NAMESPACES } };
    [a, b] = await Promise.all([spawnHerald(config), spawnHerald(config)]);
    apiA = new HeraldApi(a.url, API_KEY);
    apiB = new HeraldApi(b.url, API_KEY);
  });
  after(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.stop();
  });

  const connect = async (wsUrl: string, user: string, channel: string) => {
    const c = new Centrifuge(wsUrl, { websocket: WebSocket, token: await sign({ sub: user }), minReconnectDelay: 50, maxReconnectDelay: 500 });
    const sub = c.newSubscription(channel);
    const got: unknown[] = [];
    sub.on('publication', (ctx) => got.push(ctx.data));
    sub.subscribe();
    c.connect();
    await sub.ready(5000);
    return { c, sub, got };
  };

  test('a client on node A gets what node B\'s API publishes, in order, with and without history', async () => {
    const feed = await connect(a.wsUrl, 'u1', 'feed:ab');
    const plain = await connect(a.wsUrl, 'u1', 'plain:ab');
    for (let i = 0; i < 50; i++) await apiB.publish('feed:ab', { i });
    for (let i = 0; i < 50; i++) await apiB.publish('plain:ab', { i });
    await until(() => feed.got.length === 50 && plain.got.length === 50, 5000, '100 publications');
    assert.deepEqual(feed.got, Array.from({ length: 50 }, (_, i) => ({ i })));
    assert.deepEqual(plain.got, Array.from({ length: 50 }, (_, i) => ({ i })));
    feed.c.disconnect();
    plain.c.disconnect();
  });

  test('a plain Redis client publishes into a native channel through the installed function', async () => {
    const feed = await connect(b.wsUrl, 'u1', 'feed:redis');
    const r = redis.client();
    try {
      const reply = (await r.call('FCALL', 'herald_publish', 2, 'herald{feed:redis}.h', 'herald{feed:redis}.m', 'herald{feed:redis}.p', '{"from":"redis"}', 1000, 300000)) as [number, string, number];
      assert.equal(reply[0], 1);
      await until(() => feed.got.length === 1, 5000, 'publication from redis');
      assert.deepEqual(feed.got, [{ from: 'redis' }]);
      const h = await apiA.history('feed:redis', { limit: -1 });
      assert.deepEqual(h.publications.map((p) => p.data), [{ from: 'redis' }]);
      assert.equal(h.epoch, reply[1]);
    } finally {
      r.disconnect();
      feed.c.disconnect();
    }
  });

  test('info lists every live node; disconnect through node B reaches a client on node A', async () => {
    const end = Date.now() + 8000;
    let nodes: unknown[] = [];
    while (Date.now() < end && nodes.length < 2) {
      nodes = (await apiA.info()).nodes;
      if (nodes.length < 2) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(nodes.length, 2);
    const { c } = await connect(a.wsUrl, 'victim', 'plain:x');
    const gone = new Promise<number>((resolve) => c.on('disconnected', (ctx) => resolve(ctx.code)));
    await apiB.disconnect('victim');
    assert.equal(await gone, 3503);
  });

  test('channels counts the subscribers of every node, matching the pattern as Centrifugo does', async () => {
    const clients = [await connect(a.wsUrl, 'ca', 'plain:s1'), await connect(b.wsUrl, 'cb', 'plain:s1'), await connect(b.wsUrl, 'cc', 'plain:s2')];
    try {
      const started = Date.now();
      assert.deepEqual((await apiA.channels('plain:s*')).channels, { 'plain:s1': { num_clients: 2 }, 'plain:s2': { num_clients: 1 } });
      assert.ok(Date.now() - started < 1500, 'every node answered, none was waited for');
      assert.deepEqual((await apiB.channels('plain:s{2,3}')).channels, { 'plain:s2': { num_clients: 1 } });
      assert.deepEqual((await apiB.channels('plain:s[!2]')).channels, { 'plain:s1': { num_clients: 2 } });
      await assert.rejects(apiA.channels('plain:[s'), (e: { apiCode?: number }) => e.apiCode === 107);
      // A survey no node can read (a hand-written message, another build's syntax), on the shared
      // control channel: each node logs it and goes on serving.
      const admin = redis.client();
      await admin.publish('herald.control', JSON.stringify({ method: 'channels_survey', params: { id: 'x', from: 'elsewhere', pattern: '[abc' } }));
      admin.disconnect();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(a.proc.exitCode, null, 'node A still runs');
      assert.equal(b.proc.exitCode, null, 'node B still runs');
      assert.equal(Object.keys((await apiB.channels('plain:s*')).channels).length, 2);
    } finally {
      for (const { c } of clients) c.disconnect();
    }
  });

  test("a rolling upgrade: a node of an earlier build (announced under the earlier names) is listed, is told of this build's nodes there while it lives, and the earlier keys go once it is gone", async () => {
    const earlier = earlierNodeKeys('herald');
    const r = redis.client();
    try {
      const old = 'earlier-build-node';
      await r.zadd(earlier.expiries, Date.now() + 6_000, old);
      await r.hset(earlier.info, old, JSON.stringify({ uid: old, name: 'old', version: '0' }));
      await until(async () => (await apiA.info()).nodes.some((n) => n.uid === old), 5000, 'the earlier node listed');
      // This build's nodes announce there too while it lives (every 3 s), so that it lists them.
      await until(async () => (await r.zrangebyscore(earlier.expiries, Date.now(), '+inf')).length === 3, 8000, "this build's nodes under the earlier names");
      assert.equal(Object.keys(await r.hgetall(earlier.info)).length, 3);
      // Once its announcement has expired, the earlier keys are removed, and it is no longer listed.
      await until(async () => (await r.exists(earlier.expiries, earlier.info)) === 0, 15_000, 'the earlier keys removed');
      assert.ok(!(await apiA.info()).nodes.some((n) => n.uid === old));
      assert.equal((await apiA.info()).nodes.length, 2);
    } finally {
      r.disconnect();
    }
  });

  test('a node that stops cleanly is no longer listed by info at once, not when its announcement expires', async () => {
    const c = await spawnHerald({ engine: { type: 'redis' as const, redis: { url: redis.url } }, channel: { namespaces: NAMESPACES } });
    try {
      await until(async () => (await apiA.info()).nodes.length === 3, 8000, 'three nodes listed');
    } finally {
      await c.kill('SIGTERM');
    }
    assert.equal((await apiA.info()).nodes.length, 2);
  });
});

describe('a node killed behind a load balancer', () => {
  let redis: RedisProcess;
  const nodes: HeraldProcess[] = [];
  let lb: TcpBalancer;

  before(async () => {
    redis = await RedisProcess.start();
    const config = { engine: { type: 'redis' as const, redis: { url: redis.url } }, channel: { namespaces: NAMESPACES } };
    nodes.push(await spawnHerald(config), await spawnHerald(config));
    lb = new TcpBalancer(() => nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null).map((n) => n.port));
    await lb.start();
  });
  after(async () => {
    await lb?.stop();
    await Promise.all(nodes.map((n) => n.kill()));
    await redis?.stop();
  });

  test('clients of the killed node reconnect to another and recover every publication exactly once, in order', async () => {
    const clients = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const c = new Centrifuge(`ws://127.0.0.1:${lb.port}/connection/websocket`, {
          websocket: WebSocket,
          token: await sign({ sub: `user${i}` }),
          minReconnectDelay: 50,
          maxReconnectDelay: 300,
        });
        const sub = c.newSubscription('feed:failover');
        const got: number[] = [];
        sub.on('publication', (ctx) => got.push((ctx.data as { n: number }).n));
        sub.subscribe();
        c.connect();
        await sub.ready(5000);
        return { c, got };
      }),
    );
    const api = new HeraldApi(nodes[1]!.url, API_KEY);
    const total = 300;
    let sent = 0;
    const publisher = (async () => {
      while (sent < total) {
        await api.publish('feed:failover', { n: sent });
        sent++;
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    await until(() => sent >= 50, 10_000, 'some publications');
    await nodes[0]!.kill('SIGKILL');
    await publisher;
    await until(() => clients.every((x) => x.got.length >= total), 20_000, 'every client to have every publication');
    for (const { c, got } of clients) {
      assert.deepEqual(got, Array.from({ length: total }, (_, i) => i), 'all publications, once each, in order');
      c.disconnect();
    }
  });
});
