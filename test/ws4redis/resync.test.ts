// When Herald loses its Redis pub/sub connection, ws4redis sockets stay open: their channels are
// joined again and the persisted message is sent if it changed meanwhile, so a socket misses no
// state and gets no duplicate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import { Ws4RedisPublisher } from '../../src/index.js';
import { RedisProcess, useRedis } from '../helpers/redis.js';
import { sleep, startWs4Redis, W4RClient, waitSubscribed, wsUrl } from './helpers.js';

let redis: RedisProcess;
let client: Redis;

useRedis((r, c) => {
  redis = r;
  client = c;
});

async function killPubSub(): Promise<void> {
  const killed = (await client.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) as number;
  assert.ok(killed >= 1, 'Herald had a pub/sub connection');
}

test('a lost pub/sub connection: sockets stay, rejoin, and get the changed persisted message once', async () => {
  const node = await startWs4Redis({}, { engine: { type: 'redis', redis: { url: redis.url } } });
  const publisher = new Ws4RedisPublisher({ redis: client, facility: 'state', broadcast: true });
  try {
    const sub = await W4RClient.open(wsUrl(node, 'state', 'subscribe-broadcast'));
    await waitSubscribed(client, ['broadcast:state']);
    await publisher.publishMessage('m1');
    await sub.waitCount(1);

    // Published while Herald's subscription is gone: only the persisted copy can reach the socket.
    await killPubSub();
    await publisher.publishMessage('m2');
    await sub.waitCount(2, 10_000);
    await waitSubscribed(client, ['broadcast:state'], 10_000);
    await publisher.publishMessage('m3');
    await sub.waitCount(3);

    // Nothing changed during this loss: nothing is resent.
    await killPubSub();
    await sleep(300);
    await waitSubscribed(client, ['broadcast:state'], 10_000);
    await sleep(300);
    await publisher.publishMessage('m4');
    await sub.waitCount(4);
    await sleep(100);
    assert.deepEqual(sub.texts, ['m1', 'm2', 'm3', 'm4']);
    assert.equal(sub.closeInfo, undefined);
    await sub.close();
  } finally {
    await node.close();
  }
});
