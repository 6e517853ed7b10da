// Redis failures: unreachable at start, killed and restarted mid-stream. No crash, clear temporary
// errors while it is away, and every client either recovers or is told recovered:false.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Subscription } from 'centrifuge';
import { pino } from 'pino';
import { HeraldApiError } from '../../src/index.js';
import { client, sign, startNode, until } from '../helpers/herald.js';
import { freePort, RedisProcess } from '../helpers/redis.js';

const NAMESPACES = [{ name: 'feed', allow_subscribe_for_client: true, history_size: 100, history_ttl: '5m', force_recovery: true }];

test('Redis unreachable at start: Herald serves, answers a clear temporary error, and works once Redis is up', async () => {
  const port = await freePort();
  const node = await startNode({
    engine: { type: 'redis', redis: { url: `redis://127.0.0.1:${port}` } },
    channel: { namespaces: NAMESPACES },
  });
  let redis: RedisProcess | undefined;
  try {
    const health = await fetch(`${node.url}/health`);
    assert.equal(health.status, 200);
    await assert.rejects(node.api.publish('feed:a', 1), (e: unknown) => e instanceof HeraldApiError && e.apiCode === 100 && /engine unavailable/.test(e.message));
    redis = await RedisProcess.startOn(port);
    const end = Date.now() + 10_000;
    for (;;) {
      try {
        await node.api.publish('feed:a', 1);
        break;
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const c = client(node, { token: await sign({ sub: 'u' }) });
    const sub = c.newSubscription('feed:a');
    sub.subscribe();
    c.connect();
    await sub.ready(10_000);
    c.disconnect();
  } finally {
    await node.close();
    await redis?.stop();
  }
});

test('Redis killed and restarted mid-stream: no crash, publish fails clearly meanwhile, clients resubscribe and are told recovered:false', async () => {
  const redis = await RedisProcess.start();
  const node = await startNode({ engine: { type: 'redis', redis: { url: redis.url } }, channel: { namespaces: NAMESPACES } });
  try {
    const c = client(node, { token: await sign({ sub: 'u' }) });
    const sub: Subscription = c.newSubscription('feed:crash');
    const got: unknown[] = [];
    const subscribed: Array<{ wasRecovering: boolean; recovered: boolean }> = [];
    sub.on('publication', (ctx) => got.push(ctx.data));
    sub.on('subscribed', (ctx) => subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
    sub.subscribe();
    c.connect();
    await sub.ready(5000);
    for (let i = 0; i < 5; i++) await node.api.publish('feed:crash', { i });
    await until(() => got.length === 5, 5000, 'first publications');

    await redis.kill();
    await until(() => sub.state === 'subscribing', 5000, 'the subscription to notice the loss');
    await assert.rejects(node.api.publish('feed:crash', { lost: true }), (e: unknown) => e instanceof HeraldApiError && e.apiCode === 100);
    assert.equal((await fetch(`${node.url}/health`)).status, 200, 'still serving');

    await redis.spawn();
    await until(() => sub.state === 'subscribed', 15_000, 'resubscribed after Redis came back');
    const last = subscribed[subscribed.length - 1]!;
    // Redis lost everything (no persistence): a new epoch, so the client is told it could not recover.
    assert.deepEqual(last, { wasRecovering: true, recovered: false });
    await node.api.publish('feed:crash', { after: true });
    await until(() => got.length === 6, 5000, 'publication after restart');
    assert.deepEqual(got[5], { after: true });
    c.disconnect();
  } finally {
    await node.close();
    await redis.stop();
  }
});

test('pub/sub connection killed while publishing continues: clients recover every publication, in order, once', async () => {
  const redis = await RedisProcess.start();
  const node = await startNode({ engine: { type: 'redis', redis: { url: redis.url } }, channel: { namespaces: NAMESPACES } });
  const admin = redis.client();
  try {
    const c = client(node, { token: await sign({ sub: 'u' }) });
    const sub = c.newSubscription('feed:pubsub-kill');
    const got: number[] = [];
    sub.on('publication', (ctx) => got.push((ctx.data as { n: number }).n));
    sub.subscribe();
    c.connect();
    await sub.ready(5000);
    let n = 0;
    for (; n < 20; n++) await node.api.publish('feed:pubsub-kill', { n });
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    for (; n < 60; n++) await node.api.publish('feed:pubsub-kill', { n });
    await until(() => got.length >= 60, 10_000, 'all 60 publications');
    assert.deepEqual(got, Array.from({ length: 60 }, (_, i) => i));
    c.disconnect();
  } finally {
    admin.disconnect();
    await node.close();
    await redis.stop();
  }
});

test('a node stopping while Redis does not answer closes promptly: its server stops at once, and withdrawing its announcement is not waited for past a moment', async () => {
  const redis = await RedisProcess.start();
  const node = await startNode({ engine: { type: 'redis', redis: { url: redis.url } } });
  try {
    await until(async () => (await node.api.info()).nodes.length === 1, 8000, 'the node announced');
    redis.pause();
    const started = Date.now();
    const closing = node.close();
    // The HTTP server stops taking requests before the engine is waited on.
    await until(async () => !(await fetch(`${node.url}/health`).then(() => true, () => false)), 1500, 'the server closed');
    await closing;
    assert.ok(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`);
  } finally {
    redis.resume();
    await redis.stop();
  }
});

test('Redis refusing a command (WRONGTYPE on a key something else wrote) is an error logged each time, not taken for an outage', async () => {
  const redis = await RedisProcess.start();
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const node = await startNode({ engine: { type: 'redis', redis: { url: redis.url } }, channel: { namespaces: NAMESPACES } }, logger);
  const r = redis.client();
  try {
    await r.set('herald{feed:corrupt}.h', 'not a list');
    for (let i = 0; i < 3; i++) {
      await assert.rejects(node.api.publish('feed:corrupt', { i }), (e: unknown) => e instanceof HeraldApiError && e.apiCode === 100 && !/engine unavailable/.test(e.message));
    }
    const failed = lines.filter((l) => l.msg === 'API method failed');
    assert.equal(failed.length, 3, 'each one logged');
    assert.ok(failed.every((l) => l.level === 50 && /WRONGTYPE/.test(JSON.stringify(l.err))), JSON.stringify(failed[0]));
    assert.equal((await node.api.publish('feed:fine', { ok: true })).offset, 1, 'other channels are served');
  } finally {
    r.disconnect();
    await node.close();
    await redis.stop();
  }
});
