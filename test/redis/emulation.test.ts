// HTTP streaming across nodes over one real Redis: a client's stream on node A and its commands
// posted to node B's `/emulation` (no sticky sessions): B passes them to A through Redis.
import assert from 'node:assert/strict';
import { ReadableStream } from 'node:stream/web';
import { after, before, test } from 'node:test';
import { Centrifuge } from 'centrifuge';
import { EventSource } from 'eventsource';
import { HeraldApi } from '../../src/index.js';
import { API_KEY, record, sign, until } from '../helpers/herald.js';
import { spawnHerald, type HeraldProcess } from '../helpers/process.js';
import { sleep } from '../helpers/raw.js';
import { RedisProcess } from '../helpers/redis.js';

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
    const c = new Centrifuge([{ transport, endpoint: `${a.url}/connection/${transport}` }], {
      fetch,
      eventsource: EventSource,
      readableStream: ReadableStream,
      emulationEndpoint: `${b.url}/emulation`,
      token: await sign({ sub: `cross-${transport}` }),
      minReconnectDelay: 50,
      maxReconnectDelay: 300,
    });
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

test('/emulation answers 404 for a node that is not alive, and 204 for a live node\'s unknown session', async () => {
  const post = (node: string) =>
    fetch(`${b.url}/emulation`, { method: 'POST', body: JSON.stringify({ session: 'no-such-session', node, data: '{}' }) }).then((r) => r.status);
  assert.equal(await post('no-such-node'), 404);
  const info = await new HeraldApi(a.url, API_KEY).info();
  const uids = info.nodes.map((n) => n.uid as string);
  assert.equal(uids.length, 2);
  for (const uid of uids) assert.equal(await post(uid), 204);
});
