// A closing ws4redis socket stops being a receiver before its close is answered, as ws4redis releases
// its subscription on the close: once the client has the answer, a PUBLISH counts it no more
// (ws4redis' own test_number_of_receiver). And what ws4redis's loop never sends (`if sendmsg`): an
// empty message published to Redis.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import { RedisProcess, useRedis } from '../helpers/redis.js';
import { RawSocket, startWs4Redis, waitSubscribed } from './helpers.js';

let redis: RedisProcess;
let client: Redis;

useRedis((r, c) => {
  redis = r;
  client = c;
});

test('after the answer to its close frame, a PUBLISH to its channel counts no receiver', async () => {
  const node = await startWs4Redis({}, { engine: { type: 'redis', redis: { url: redis.url } } });
  try {
    for (let round = 0; round < 5; round++) {
      const socket = await RawSocket.open(node.port, '/ws/unittest?subscribe-broadcast');
      await waitSubscribed(client, ['broadcast:unittest']);
      assert.equal(await client.publish('broadcast:unittest', 'x'), 1, 'a receiver while open');
      socket.sendFrame(0x8, RawSocket.closePayload(1000));
      await socket.waitFrame(0x8);
      assert.equal(await client.publish('broadcast:unittest', 'y'), 0, `round ${round}: no receiver once the close is answered`);
      socket.destroy();
    }
  } finally {
    await node.close();
  }
});

test('an empty message published to Redis is not sent to sockets; the next message is', async () => {
  const node = await startWs4Redis({ heartbeat: '--hb--' }, { engine: { type: 'redis', redis: { url: redis.url } } });
  try {
    const socket = await RawSocket.open(node.port, '/ws/quiet?subscribe-broadcast');
    await waitSubscribed(client, ['broadcast:quiet']);
    await client.publish('broadcast:quiet', '');
    await client.publish('broadcast:quiet', 'real');
    const frame = await socket.waitFrame(0x1);
    assert.equal(frame.payload.toString(), 'real');
    socket.destroy();
  } finally {
    await node.close();
  }
});
