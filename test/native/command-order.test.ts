// A session answers its commands in the order they came, frame after frame, also when one waits on
// Redis while the next frames arrive, and goes on doing so after its chain of commands was idle.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startNode, userToken } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';
import { RedisProcess } from '../helpers/redis.js';

test('replies keep the order of the commands while one waits on a paused Redis; then again once idle', async () => {
  const redis = await RedisProcess.start();
  const node = await startNode({
    engine: { type: 'redis', redis: { url: redis.url } },
    channel: { namespaces: [{ name: 'h', allow_history_for_client: true, history_size: 10, history_ttl: '60s' }] },
  });
  const admin = redis.client();
  try {
    const c = await RawClient.open(node.wsUrl);
    await c.connect({ token: await userToken('u') });
    const order = () => c.messages.filter((m) => typeof m.id === 'number' && m.id >= 10).map((m) => m.id as number);
    for (const round of [10, 20]) {
      // Redis answers nobody for 400 ms: the history call (second frame) waits, the rpc calls
      // around it (answered by the node itself) must not overtake it.
      await admin.call('CLIENT', 'PAUSE', '400', 'ALL');
      c.send({ id: round, rpc: { method: 'm' } });
      c.send({ id: round + 1, history: { channel: 'h:x', limit: 1 } });
      await c.reply(round);
      c.send({ id: round + 2, rpc: { method: 'm' } }); // sent once the first reply is in
      await c.reply(round + 2, 3000);
      assert.ok(c.messages.find((m) => m.id === round + 1)?.history, 'the history call was answered');
      assert.deepEqual(order().slice(-3), [round, round + 1, round + 2]);
    }
    c.close();
  } finally {
    admin.disconnect();
    await node.close();
    await redis.stop();
  }
});
