// A node holds a fixed few Redis connections and one Redis subscription per channel, whatever the
// number of client sockets; channels left by their last subscriber are unsubscribed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
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
