// A node holds a fixed few Redis connections and one Redis subscription per channel, whatever the
// number of client sockets; channels left by their last subscriber are unsubscribed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { pino } from 'pino';
import { rawChannel } from '../../src/engine/engine.js';
import { RedisEngine } from '../../src/engine/redis.js';
import { client, sign, startNode } from '../helpers/herald.js';
import { RedisProcess } from '../helpers/redis.js';

test('100 clients on 10 channels: 2 Redis connections, 10 channel subscriptions; all gone after they leave', async () => {
  const redis = await RedisProcess.start();
  const admin = redis.client();
  const node = await startNode({
    engine: { type: 'redis', redis: { url: redis.url } },
    channel: { namespaces: [{ name: 'room', allow_subscribe_for_client: true }] },
  });
  const clients: Centrifuge[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      const c = client(node, { token: await sign({ sub: `u${i}` }) });
      const sub = c.newSubscription(`room:${i % 10}`);
      sub.subscribe();
      c.connect();
      clients.push(c);
      await sub.ready(5000);
    }
    const herald = async () => ((await admin.call('PUBSUB', 'CHANNELS', 'herald{*')) as string[]).sort();
    assert.deepEqual(await herald(), Array.from({ length: 10 }, (_, i) => `herald{room:${i}}.p`).sort());
    const list = String(await admin.call('CLIENT', 'LIST'));
    const others = list.split('\n').filter((l) => l.trim() && !l.includes('cmd=client'));
    assert.equal(others.length, 2, `one command and one pub/sub connection, got:\n${list}`);
    for (const c of clients) c.disconnect();
    const end = Date.now() + 5000;
    while ((await herald()).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await herald(), []);
  } finally {
    admin.disconnect();
    await node.close();
    await redis.stop();
  }
});

test('a channel left while the pub/sub connection is down stays left after it reconnects', async () => {
  const redis = await RedisProcess.start();
  const admin = redis.client();
  const engine = new RedisEngine({
    url: redis.url,
    prefix: 'herald',
    commandTimeoutMs: 2000,
    shardedPubsub: true,
    historyMetaTtlMs: 60_000,
    idempotentResultTtlMs: 60_000,
    log: pino({ level: 'silent' }),
  });
  let resyncs = 0;
  await engine.start({ onPublication: () => 0, onResync: () => resyncs++ });
  try {
    await engine.subscribe(rawChannel('left-behind'));
    await engine.subscribe(rawChannel('kept'));
    const numsub = async (ch: string) => Number(((await admin.call('PUBSUB', 'NUMSUB', ch)) as [string, number])[1]);
    assert.equal(await numsub('left-behind'), 1);
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await engine.unsubscribe(rawChannel('left-behind'));
    const end = Date.now() + 5000;
    while (resyncs === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.equal(resyncs, 1, 'subscribers were told to resync');
    // Subscribers that still want a channel subscribe again after the resync.
    for (;;) {
      try {
        await engine.subscribe(rawChannel('kept'));
        break;
      } catch {
        if (Date.now() > end) throw new Error('pub/sub connection never came back');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.equal(await numsub('kept'), 1);
    assert.equal(await numsub('left-behind'), 0);
  } finally {
    await engine.close();
    admin.disconnect();
    await redis.stop();
  }
});
