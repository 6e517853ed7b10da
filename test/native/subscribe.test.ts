// Subscribing: namespace permissions, unknown namespaces, limits, and the subscribe result fields,
// seen by centrifuge-js (subscribed / unsubscribed events) and on the wire.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { client, collect, once, openNamespace, sign, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

let node: TestNode;
const history = { history_size: 10, history_ttl: '60s' };
before(async () => {
  node = await startNode({
    client: { allow_anonymous_connect_without_token: true },
    channel: {
      namespaces: [
        openNamespace('news'),
        { name: 'members', allow_subscribe_for_client: true },
        { name: 'dialog', allow_user_limited_channels: true },
        openNamespace('stream', { ...history, force_recovery: true }),
        openNamespace('opt', { ...history, allow_recovery: true, allow_positioning: true }),
        openNamespace('pos', { ...history, force_positioning: true }),
      ],
    },
  });
});
after(() => node.close());

/** A connected centrifuge-js client (anonymous unless a user is given). */
async function connected(user?: string): Promise<Centrifuge> {
  const c = client(node, user ? { token: await userToken(user) } : {});
  c.connect();
  await c.ready(3000);
  return c;
}

/** A raw client connected as `user` (anonymous when empty). */
async function rawConnected(user = ''): Promise<RawClient> {
  const raw = await RawClient.open(node.wsUrl);
  await raw.connect(user ? { token: await userToken(user) } : {});
  return raw;
}

test('a channel the config did not open: 103, the SDK subscription ends unsubscribed with 103', async () => {
  const c = await connected('alice');
  for (const [channel, code] of [['closed', 103], ['nope:x', 102]] as const) {
    const sub = c.newSubscription(channel);
    const unsubscribed = once<{ code: number }>(sub, 'unsubscribed');
    sub.subscribe();
    assert.equal((await unsubscribed).code, code, channel);
    assert.equal(sub.state, 'unsubscribed');
    await assert.rejects(sub.ready(100));
    c.removeSubscription(sub);
  }
  assert.equal(c.state, 'connected', 'a refused subscription does not end the connection');
  c.disconnect();

  const raw = await rawConnected('alice');
  assert.deepEqual((await raw.call('subscribe', { channel: 'closed' })).error, { code: 103, message: 'permission denied' });
  assert.deepEqual((await raw.call('subscribe', { channel: 'nope:1' })).error, { code: 102, message: 'unknown channel' });
  raw.close();
});

test('anonymous connections are refused where allow_subscribe_for_anonymous is off', async () => {
  const anon = await rawConnected();
  assert.equal((await anon.call('subscribe', { channel: 'members:1' })).error?.code, 103);
  assert.ok((await anon.call('subscribe', { channel: 'news:1' })).subscribe, 'open namespace');
  anon.close();
  const alice = await rawConnected('alice');
  assert.ok((await alice.call('subscribe', { channel: 'members:1' })).subscribe);
  alice.close();
});

test('user-limited channels admit only the users they name', async () => {
  const alice = await rawConnected('alice');
  assert.ok((await alice.call('subscribe', { channel: 'dialog:x#alice,bob' })).subscribe);
  assert.equal((await alice.call('subscribe', { channel: 'dialog:y#bob,carol' })).error?.code, 103);
  alice.close();
  const anon = await rawConnected();
  assert.equal((await anon.call('subscribe', { channel: 'dialog:x#alice,bob' })).error?.code, 103);
  anon.close();
});

test('subscribe reply shape: {} for a plain channel, position fields for a stream', async () => {
  const raw = await rawConnected('alice');
  const id = raw.id();
  raw.send({ subscribe: { channel: 'news:shape', flag: 1 }, id });
  await raw.reply(id);
  assert.equal(raw.frames.at(-1), `{"id":${id},"subscribe":{}}`);

  await node.api.publish('stream:shape', { n: 1 });
  await node.api.publish('stream:shape', { n: 2 });
  const r = (await raw.call('subscribe', { channel: 'stream:shape' })).subscribe;
  assert.equal(r.recoverable, true);
  assert.equal(r.positioned, true);
  assert.equal(r.offset, 2);
  assert.match(r.epoch, /^[a-zA-Z]{8}$/);
  assert.equal('recovered' in r, false);
  assert.equal('was_recovering' in r, false);
  assert.equal('publications' in r, false);

  const p = (await raw.call('subscribe', { channel: 'pos:shape' })).subscribe;
  assert.equal(p.positioned, true);
  assert.equal('recoverable' in p, false, 'force_positioning alone is not recovery');
  assert.equal(p.offset ?? 0, 0);
  assert.equal(typeof p.epoch, 'string');
  raw.close();
});

test('allow_recovery / allow_positioning follow the request flags', async () => {
  const raw = await rawConnected('alice');
  const plain = (await raw.call('subscribe', { channel: 'opt:a' })).subscribe;
  assert.deepEqual(plain, {});
  const positioned = (await raw.call('subscribe', { channel: 'opt:b', positioned: true })).subscribe;
  assert.equal(positioned.positioned, true);
  assert.equal('recoverable' in positioned, false);
  const recoverable = (await raw.call('subscribe', { channel: 'opt:c', recoverable: true })).subscribe;
  assert.equal(recoverable.recoverable, true);
  assert.equal(recoverable.positioned, true);
  // On a namespace that allows neither, the flags are ignored.
  assert.deepEqual((await raw.call('subscribe', { channel: 'news:flags', recoverable: true, positioned: true })).subscribe, {});
  raw.close();

  // centrifuge-js with `recoverable: true` gets a recoverable subscription there.
  const c = await connected('alice');
  const sub = c.newSubscription('opt:sdk', { recoverable: true });
  const subscribed = once<{ recoverable: boolean; positioned: boolean; streamPosition?: { offset: number } }>(sub, 'subscribed');
  sub.subscribe();
  const ctx = await subscribed;
  assert.equal(ctx.recoverable, true);
  assert.equal(ctx.positioned, true);
  assert.equal(ctx.streamPosition?.offset, 0);
  c.disconnect();
});

test('already subscribed: 105; the first subscription keeps receiving', async () => {
  const raw = await rawConnected('alice');
  assert.ok((await raw.call('subscribe', { channel: 'news:dup' })).subscribe);
  assert.deepEqual((await raw.call('subscribe', { channel: 'news:dup' })).error, { code: 105, message: 'already subscribed' });
  await node.api.publish('news:dup', { still: 'here' });
  await raw.waitFor((m) => m.push?.channel === 'news:dup');
  assert.deepEqual(raw.pushes('news:dup'), [{ data: { still: 'here' } }]);
  raw.close();
});

test('empty channel in subscribe: disconnect 3501; a channel over channel_max_length: 106', async () => {
  const raw = await rawConnected('alice');
  assert.equal((await raw.call('subscribe', { channel: 'x'.repeat(256) })).error?.code, 106);
  raw.send({ id: raw.id(), subscribe: { channel: '' } });
  assert.equal((await raw.waitClose()).code, 3501);
});

test("channel.max_length (Centrifugo v6's name) wins over client.channel_max_length", async () => {
  const short = await startNode({ client: { channel_max_length: 100 }, channel: { max_length: 8, namespaces: [openNamespace('n')] } });
  try {
    const raw = await RawClient.open(short.wsUrl);
    await raw.connect({ token: await userToken('alice') });
    assert.ok((await raw.call('subscribe', { channel: 'n:123456' })).subscribe, '8 characters');
    assert.equal((await raw.call('subscribe', { channel: 'n:1234567' })).error?.code, 106);
    raw.close();
  } finally {
    await short.close();
  }
});

test('a tags filter (centrifuge-js tagsFilter) where the namespace has no allow_tags_filter is refused with 107, not ignored: the client would get what it filtered out', async () => {
  const c = await connected('alice');
  const sub = c.newSubscription('news:tf', { tagsFilter: { key: 'ticker', cmp: 'eq', val: 'BTC' } });
  const unsubscribed = once<{ code: number }>(sub, 'unsubscribed');
  sub.subscribe();
  assert.equal((await unsubscribed).code, 107);
  c.disconnect();
});

test('map and shared-poll subscriptions (type 1, 2) and map publishes are refused with 107, not taken as streams', async () => {
  const raw = await rawConnected('alice');
  for (const type of [1, 2]) assert.equal((await raw.call('subscribe', { channel: 'news:map', type })).error?.code, 107, `type ${type}`);
  assert.equal((await raw.call('subscribe', { channel: 'news:map', type: 0 })).error, undefined);
  raw.close();
  const publisher = await RawClient.open(node.wsUrl);
  await publisher.connect({ token: await userToken('alice') });
  assert.equal((await publisher.call('publish', { channel: 'news:map', type: 1, key: 'k1', data: { v: 1 } })).error?.code, 107);
  publisher.close();
});

test('channel limit: subscribing past client.channel_limit answers 106', async () => {
  const limited = await startNode({ client: { channel_limit: 2 }, channel: { namespaces: [openNamespace('n')] } });
  try {
    const raw = await RawClient.open(limited.wsUrl);
    await raw.connect({ token: await userToken('alice') });
    assert.ok((await raw.call('subscribe', { channel: 'n:1' })).subscribe);
    assert.ok((await raw.call('subscribe', { channel: 'n:2' })).subscribe);
    assert.deepEqual((await raw.call('subscribe', { channel: 'n:3' })).error, { code: 106, message: 'limit exceeded' });
    // After an unsubscribe there is room again.
    assert.ok((await raw.call('unsubscribe', { channel: 'n:1' })).unsubscribe);
    assert.ok((await raw.call('subscribe', { channel: 'n:3' })).subscribe);
    raw.close();

    const c = client(limited, { token: await userToken('alice') });
    const subs = ['n:1', 'n:2', 'n:3'].map((ch) => c.newSubscription(ch));
    const third = once<{ code: number }>(subs[2]!, 'unsubscribed');
    subs.forEach((s) => s.subscribe());
    c.connect();
    assert.equal((await third).code, 106);
    await subs[0]!.ready(2000);
    await subs[1]!.ready(2000);
    c.disconnect();
  } finally {
    await limited.close();
  }
});

test('a subscription receives only its channel, in publish order, with the published JSON values', async () => {
  const c = await connected('alice');
  const a = c.newSubscription('news:a');
  const b = c.newSubscription('news:b');
  const gotA = collect(a);
  const gotB = collect(b);
  a.subscribe();
  b.subscribe();
  await Promise.all([a.ready(2000), b.ready(2000)]);
  const values = [{ text: 'hi' }, [1, 2, 3], 'a string', 42, true, null, { nested: { deep: ['x'] }, unicode: 'żółw ✓', nl: 'a\nb' }];
  for (const v of values) await node.api.publish('news:a', v);
  await node.api.publish('news:b', { only: 'b' });
  await until(() => gotA.length === values.length && gotB.length === 1, 3000, 'publications');
  assert.deepEqual(gotA, values);
  assert.deepEqual(gotB, [{ only: 'b' }]);
  c.disconnect();
});

test('the SDK unsubscribes, stops receiving, and can subscribe again', async () => {
  const c = await connected('alice');
  const sub = c.newSubscription('news:again');
  const got = collect(sub);
  sub.subscribe();
  await sub.ready(2000);
  await node.api.publish('news:again', 1);
  await until(() => got.length === 1);
  sub.unsubscribe();
  await until(() => sub.state === 'unsubscribed');
  await sleep(50);
  await node.api.publish('news:again', 2);
  await sleep(100);
  assert.deepEqual(got, [1]);
  sub.subscribe();
  await sub.ready(2000);
  await node.api.publish('news:again', 3);
  await until(() => got.length === 2);
  assert.deepEqual(got, [1, 3]);
  assert.equal(c.state, 'connected');
  c.disconnect();
});

test('the engine losing a channel while a subscribe is set up: a temporary error, the client retries, and then receives', async () => {
  // Reach into the node: hold the history read of the subscribe, and have the engine report the
  // channel lost meanwhile (as the Redis engine does when a cluster connection is replaced).
  const inner = node.herald as unknown as { engine: { history: (...a: unknown[]) => Promise<unknown> }; hub: { onResync(ch: string[]): void } };
  const history = inner.engine.history;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let reads = 0;
  inner.engine.history = async function (this: unknown, ...args: unknown[]) {
    if (reads++ === 0) await held;
    return history.apply(this, args);
  };
  try {
    const c = await connected();
    const sub = c.newSubscription('stream:resynced');
    const errors: unknown[] = [];
    sub.on('error', (ctx) => errors.push(ctx.error));
    const got = collect(sub);
    sub.subscribe();
    await until(() => reads === 1, 3000, 'the subscribe to read history');
    inner.hub.onResync(['stream:resynced']);
    release();
    await sub.ready(5000);
    assert.deepEqual(errors, [{ code: 100, message: 'internal server error', temporary: true }]);
    await node.api.publish('stream:resynced', { after: 'retry' });
    await until(() => got.length === 1, 3000, 'the publication after the retry');
    assert.deepEqual(got, [{ after: 'retry' }]);
    c.disconnect();
  } finally {
    inner.engine.history = history;
  }
});
