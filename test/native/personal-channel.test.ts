// client.subscribe_to_user_personal_channel (Centrifugo's): every connection with a user is
// subscribed server-side to that user's channel (`#alice`, or `<namespace>:#alice`), so a backend
// reaches all of a user's tabs with one publish; with single_connection a user's new connection ends
// the others, on every node (3504, which centrifuge-js does not reconnect from).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { client, once, record, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RedisProcess } from '../helpers/redis.js';

/** A connected client of `user` (anonymous when empty), with the publications it got from server-side subscriptions. */
async function connectAs(node: TestNode, user: string) {
  const c = client(node, user ? { token: await userToken(user) } : {});
  const pubs: Array<{ channel: string; data: unknown }> = [];
  const subscribed: string[] = [];
  c.on('publication', (ctx) => pubs.push({ channel: ctx.channel, data: ctx.data }));
  c.on('subscribed', (ctx) => subscribed.push(ctx.channel));
  c.connect();
  await once(c, 'connected');
  return { c, pubs, subscribed };
}

test('personal channel: a user\'s every connection is subscribed to #user, and one publish reaches them all; anonymous ones are not', async () => {
  const node = await startNode({ client: { allow_anonymous_connect_without_token: true, subscribe_to_user_personal_channel: { enabled: true } } });
  try {
    const tab1 = await connectAs(node, 'alice');
    const tab2 = await connectAs(node, 'alice');
    const bob = await connectAs(node, 'bob');
    const anon = await connectAs(node, '');
    assert.deepEqual([tab1.subscribed, tab2.subscribed, bob.subscribed, anon.subscribed], [['#alice'], ['#alice'], ['#bob'], []]);
    await node.api.publish('#alice', { unread: 3 });
    await until(() => tab1.pubs.length === 1 && tab2.pubs.length === 1);
    assert.deepEqual(tab1.pubs, [{ channel: '#alice', data: { unread: 3 } }]);
    assert.deepEqual(bob.pubs, []);
    assert.equal(tab1.c.state, 'connected', 'without single_connection both tabs stay');
  } finally {
    await node.close();
  }
});

test('personal channel in a namespace: <namespace>:#user, with that namespace\'s history; the namespace must exist', async () => {
  const node = await startNode({
    client: { subscribe_to_user_personal_channel: { enabled: true, personal_channel_namespace: 'personal' } },
    channel: { namespaces: [{ name: 'personal', history_size: 10, history_ttl: '60s', force_recovery: true }] },
  });
  try {
    const carol = await connectAs(node, 'carol');
    assert.deepEqual(carol.subscribed, ['personal:#carol']);
    const first = await node.api.publish('personal:#carol', 'one');
    assert.equal(first.offset, 1, 'the namespace keeps history');
    await until(() => carol.pubs.length === 1);
  } finally {
    await node.close();
  }
  await assert.rejects(
    startNode({ client: { subscribe_to_user_personal_channel: { enabled: true, personal_channel_namespace: 'nope' } } }),
    /client\.subscribe_to_user_personal_channel\.personal_channel_namespace.*no channel namespace "nope"/s,
  );
});

test('single_connection on one node: a user\'s new connection ends the older one (3504); other users stay', async () => {
  const node = await startNode({ client: { subscribe_to_user_personal_channel: { enabled: true, single_connection: true } } });
  try {
    const old = await connectAs(node, 'alice');
    const bob = await connectAs(node, 'bob');
    const oldEvents = record(old.c as Centrifuge, 'disconnected');
    const fresh = await connectAs(node, 'alice');
    await until(() => oldEvents.length === 1, 5000, 'the older connection to end');
    assert.deepEqual(oldEvents[0]![1], { code: 3504, reason: 'connection limit' });
    assert.deepEqual([old.c.state, fresh.c.state, bob.c.state], ['disconnected', 'connected', 'connected']);
  } finally {
    await node.close();
  }
});

for (const presence of [false, true]) {
  test(`single_connection on two nodes sharing Redis (${presence ? 'presence on the personal channel: read first' : 'no presence: every node told'}): a user's new connection ends the older one (3504) on the other node; other users stay`, async () => {
    const redis = await RedisProcess.start();
    const extra = {
      engine: { type: 'redis' as const, redis: { url: redis.url } },
      client: { subscribe_to_user_personal_channel: { enabled: true, single_connection: true, personal_channel_namespace: 'personal' } },
      channel: { namespaces: [{ name: 'personal', presence }] },
    };
    const a = await startNode(extra);
    const b = await startNode(extra);
    // The disconnect messages the nodes send each other, as Redis carries them.
    const watcher = redis.client();
    const told: string[] = [];
    await watcher.subscribe('herald.control');
    watcher.on('message', (_channel: string, text: string) => {
      const message = JSON.parse(text) as { method: string; params: { user?: string } };
      if (message.method === 'disconnect') told.push(message.params.user ?? '');
    });
    try {
      const old = await connectAs(a, 'alice');
      const bob = await connectAs(a, 'bob');
      const present = async () => Object.keys(((await a.herald.api('presence', { channel: 'personal:#alice' })) as { presence: object }).presence).length;
      if (presence) await until(async () => (await present()) === 1, 5000, "alice's presence");
      const oldEvents = record(old.c as Centrifuge, 'disconnected');
      const fresh = await connectAs(b, 'alice');
      await until(() => oldEvents.length === 1, 5000, 'the older connection to end');
      assert.deepEqual(oldEvents[0]![1], { code: 3504, reason: 'connection limit' });
      assert.equal(old.c.state, 'disconnected', 'centrifuge-js does not reconnect after 3504');
      assert.deepEqual([fresh.c.state, bob.c.state], ['connected', 'connected']);
      await a.api.publish('personal:#alice', 'to the one left');
      await until(() => fresh.pubs.length === 1);
      assert.deepEqual(old.pubs, []);
      // With presence, only the connect that found another connection told the nodes; without, each did.
      assert.deepEqual(told, presence ? ['alice'] : ['alice', 'bob', 'alice']);
    } finally {
      watcher.disconnect();
      await a.close();
      await b.close();
      await redis.stop();
    }
  });
}
