// Presence and join/leave across Herald nodes on one Redis and on a Redis Cluster: every node answers
// for every node's clients, joins and leaves travel between nodes, and the clients of a node that
// dies leave presence once their entries' TTL has passed (no node is left to remove them); a
// subscription the engine lost (Redis restarted) leaves presence.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Centrifuge, type Subscription } from 'centrifuge';
import WebSocket from 'ws';
import { pino } from 'pino';
import { createHerald, HeraldApi, loadConfig } from '../../src/index.js';
import { API_KEY, sign, startNode, testConfig, until } from '../helpers/herald.js';
import { spawnHerald, type HeraldProcess } from '../helpers/process.js';
import { RawClient, sleep } from '../helpers/raw.js';
import { RedisCluster, RedisProcess } from '../helpers/redis.js';

const NAMESPACES = [{ name: 'room', allow_subscribe_for_client: true, presence: true, join_leave: true, allow_presence_for_subscriber: true }];
// Short, so that a dead node's entries go within the test: updated every 300 ms, kept 1.5 s.
const PRESENCE = { client: { presence_update_interval: '300ms' }, engine: { presence_ttl: '1500ms' } };

const clients: Centrifuge[] = [];
after(() => {
  for (const c of clients) c.disconnect();
});

async function member(wsUrl: string, user: string, channel: string): Promise<{ c: Centrifuge; sub: Subscription; events: string[] }> {
  const c = new Centrifuge(wsUrl, { websocket: WebSocket, token: await sign({ sub: user }), minReconnectDelay: 5000, maxReconnectDelay: 10000 });
  clients.push(c);
  const sub = c.newSubscription(channel, { joinLeave: true });
  const events: string[] = [];
  sub.on('join', (ctx) => events.push(`join ${ctx.info.user}`));
  sub.on('leave', (ctx) => events.push(`leave ${ctx.info.user}`));
  sub.subscribe();
  c.connect();
  await sub.ready(5000);
  return { c, sub, events };
}

const users = async (api: HeraldApi, channel: string): Promise<string[]> => {
  const r = await api.presence(channel);
  return Object.values(r.presence).map((i) => i.user).sort();
};

for (const kind of ['one Redis', 'a Redis Cluster'] as const) {
  describe(`presence across nodes on ${kind}`, () => {
    let redis: RedisProcess | undefined;
    let cluster: RedisCluster | undefined;
    let a: HeraldProcess;
    let b: HeraldProcess;
    let apiA: HeraldApi;
    let apiB: HeraldApi;

    before(async () => {
      let engine: Record<string, unknown>;
      if (kind === 'one Redis') {
        redis = await RedisProcess.start();
        engine = { type: 'redis', redis: { url: redis.url }, ...PRESENCE.engine };
      } else {
        cluster = await RedisCluster.start(3);
        engine = { type: 'redis', redis: { cluster: cluster.seeds }, ...PRESENCE.engine };
      }
      const config = { engine, client: PRESENCE.client, channel: { namespaces: NAMESPACES } };
      [a, b] = await Promise.all([spawnHerald(config as never), spawnHerald(config as never)]);
      apiA = new HeraldApi(a.url, API_KEY);
      apiB = new HeraldApi(b.url, API_KEY);
    });
    after(async () => {
      await Promise.all([a?.kill(), b?.kill()]);
      await redis?.stop();
      await cluster?.stop();
    });

    test("either node lists both nodes' clients; joins and leaves reach the other node", async () => {
      const alice = await member(a.wsUrl, 'alice', 'room:x');
      const bob = await member(b.wsUrl, 'bob', 'room:x');
      assert.deepEqual(await users(apiA, 'room:x'), ['alice', 'bob']);
      assert.deepEqual(await users(apiB, 'room:x'), ['alice', 'bob']);
      assert.deepEqual(await alice.sub.presenceStats(), { numClients: 2, numUsers: 2 });
      await until(() => alice.events.length === 2, 5000, "alice's own join and bob's");
      assert.deepEqual(alice.events, ['join alice', 'join bob']);
      bob.c.disconnect();
      await until(() => alice.events.length === 3, 5000, "bob's leave, from node B");
      assert.equal(alice.events[2], 'leave bob');
      assert.deepEqual(await users(apiB, 'room:x'), ['alice']);
      alice.c.disconnect();
    });

    test("a killed node's clients leave presence once their TTL has passed; the living node's stay", async () => {
      const alice = await member(a.wsUrl, 'alice', 'room:kill');
      await member(b.wsUrl, 'bob', 'room:kill');
      assert.deepEqual(await users(apiA, 'room:kill'), ['alice', 'bob']);
      await b.kill(); // SIGKILL: node B removes nothing
      assert.deepEqual(await users(apiA, 'room:kill'), ['alice', 'bob'], 'still listed within the TTL');
      await sleep(2_500);
      assert.deepEqual(await users(apiA, 'room:kill'), ['alice'], "bob's entry expired; alice's is kept by node A's updates");
      alice.c.disconnect();
    });
  });
}

test('Redis killed and restarted: a subscription the engine lost leaves presence (its node no longer adds it again); one that subscribes again is present', async () => {
  const redis = await RedisProcess.start();
  const node = await startNode({ engine: { type: 'redis', redis: { url: redis.url }, ...PRESENCE.engine }, client: PRESENCE.client, channel: { namespaces: NAMESPACES } });
  try {
    // A raw client that does not subscribe again after its unsubscribe push (a page closed meanwhile).
    const gone = await RawClient.open(node.wsUrl);
    await gone.connect({ token: await sign({ sub: 'gone' }) });
    await gone.call('subscribe', { channel: 'room:restart' });
    const back = await member(node.wsUrl, 'back', 'room:restart');
    assert.deepEqual(await users(node.api, 'room:restart'), ['back', 'gone']);
    await redis.kill();
    await until(() => gone.messages.some((m) => m.push?.unsubscribe?.code === 2500), 5000, "the lost client's unsubscribe 2500");
    await redis.spawn(); // empty: the entries are gone with it
    await until(() => back.sub.state === 'subscribed', 15_000, 'the SDK client subscribed again');
    await sleep(1_000); // past three presence updates (300 ms)
    assert.deepEqual(await users(node.api, 'room:restart'), ['back'], 'the lost subscription is not added again');
    gone.close();
    back.c.disconnect();
  } finally {
    await node.close();
    await redis.stop();
  }
});

test('while Redis is away, the presence failures of many subscriptions are one warning, not one per subscription', async () => {
  const redis = await RedisProcess.start();
  const lines: Array<{ msg: string; repeated?: number }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
  const config = loadConfig({
    values: testConfig({ engine: { type: 'redis', redis: { url: redis.url, command_timeout: '300ms' }, ...PRESENCE.engine }, client: PRESENCE.client, channel: { namespaces: NAMESPACES } }),
  });
  const herald = createHerald({ config, logger });
  await herald.start();
  const raws: RawClient[] = [];
  try {
    for (let i = 0; i < 30; i++) {
      const r = await RawClient.open(`ws://127.0.0.1:${herald.port}/connection/websocket`);
      await r.connect({ token: await sign({ sub: `u${i}` }) });
      await r.call('subscribe', { channel: `room:away${i}` });
      raws.push(r);
    }
    await redis.kill();
    await until(() => raws.every((r) => r.messages.some((m) => m.push?.unsubscribe?.code === 2500)), 5000, 'every subscription lost');
    await sleep(2_000); // the removes fail after the 300 ms command timeout; presence updates every 300 ms
    const presenceLines = lines.filter((l) => l.msg.startsWith('presence') || l.msg === 'join failed' || l.msg === 'leave failed');
    assert.ok(presenceLines.length >= 1, 'the failure is logged');
    assert.ok(presenceLines.length <= 3, `${presenceLines.length} presence warnings: ${JSON.stringify(presenceLines.slice(0, 3))}`);
  } finally {
    for (const r of raws) r.close();
    await herald.close();
    await redis.stop();
  }
});
