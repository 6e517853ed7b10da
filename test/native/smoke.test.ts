import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { client, collect, once, sign, startNode, until, type TestNode } from '../helpers/herald.js';

let node: TestNode;
before(async () => {
  node = await startNode({
    client: { allow_anonymous_connect_without_token: true },
    channel: {
      namespaces: [
        { name: 'news', allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true, history_size: 100, history_ttl: '60s', force_recovery: true },
      ],
    },
  });
});
after(() => node.close());

test('anonymous client subscribes and receives API publications in order', async () => {
  const c = client(node);
  const sub = c.newSubscription('news:1');
  const got = collect(sub);
  sub.subscribe();
  c.connect();
  await sub.ready(5000);
  for (let i = 0; i < 5; i++) await node.api.publish('news:1', { i });
  await until(() => got.length === 5);
  assert.deepEqual(got, [0, 1, 2, 3, 4].map((i) => ({ i })));
  c.disconnect();
});

test('recovery after reconnect', async () => {
  const token = await sign({ sub: 'alice' });
  const c = client(node, { token });
  const sub = c.newSubscription('news:2');
  const got = collect(sub);
  sub.subscribe();
  c.connect();
  await sub.ready(5000);
  await node.api.publish('news:2', { n: 1 });
  await until(() => got.length === 1);
  c.disconnect();
  await node.api.publish('news:2', { n: 2 });
  await node.api.publish('news:2', { n: 3 });
  const subscribed = once<{ recovered: boolean; wasRecovering: boolean }>(sub, 'subscribed');
  c.connect();
  const ctx = await subscribed;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, true);
  await until(() => got.length === 3);
  assert.deepEqual(got, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  c.disconnect();
});
