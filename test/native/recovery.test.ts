// Recovery with centrifuge-js across forced disconnects: every missed publication exactly once and
// in order (`recovered: true`), trimmed history and new epochs reported (`recovered: false`,
// `wasRecovering: true`), never a silent gap; getState with unrecoverable positions (112).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Centrifuge, Subscription } from 'centrifuge';
import { client, once, openNamespace, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { sleep } from '../helpers/raw.js';

interface Subscribed {
  recovered: boolean;
  wasRecovering: boolean;
  hasRecoveredPublications: boolean;
  streamPosition?: { offset: number; epoch: string };
}

let node: TestNode;
const ns = (name: string, size: number) => openNamespace(name, { history_size: size, history_ttl: '60s', force_recovery: true });
before(async () => {
  node = await startNode({
    channel: {
      namespaces: [ns('rec', 1000), ns('short', 3), openNamespace('brief', { history_size: 10, history_ttl: '200ms', history_meta_ttl: '400ms', force_recovery: true })],
    },
  });
});
after(() => node.close());

/** A connected client as `user` with one subscription, recording publications and subscribed events. */
async function subscriber(
  n: TestNode,
  user: string,
  channel: string,
  opts: Parameters<Centrifuge['newSubscription']>[1] = {},
  clientOpts: Parameters<typeof client>[1] = {},
) {
  const c = client(n, { token: await userToken(user), ...clientOpts });
  const sub: Subscription = c.newSubscription(channel, opts);
  const pubs: Array<{ data: any; offset?: number }> = [];
  const subscribed: Subscribed[] = [];
  sub.on('publication', (ctx) => pubs.push(ctx));
  sub.on('subscribed', (ctx) => subscribed.push(ctx as Subscribed));
  sub.subscribe();
  c.connect();
  await sub.ready(3000);
  return { c, sub, pubs, subscribed, data: () => pubs.map((p) => p.data) };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('missed publications during a forced reconnect (3011) are recovered exactly once, in order', async () => {
  const s = await subscriber(node, 'r1', 'rec:a', {}, { minReconnectDelay: 300, maxReconnectDelay: 400 });
  for (const i of range(1, 3)) await node.api.publish('rec:a', i);
  await until(() => s.pubs.length === 3);
  const connecting = once<{ code: number }>(s.c, 'connecting');
  await node.api.disconnect('r1', { disconnect: { code: 3011, reason: 'force reconnect' } });
  assert.equal((await connecting).code, 3011);
  for (const i of range(4, 8)) await node.api.publish('rec:a', i);
  await until(() => s.subscribed.length === 2, 3000, 'resubscribed');
  const ctx = s.subscribed[1]!;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, true);
  assert.equal(ctx.hasRecoveredPublications, true);
  await until(() => s.pubs.length >= 8);
  await node.api.publish('rec:a', 9);
  await until(() => s.pubs.length >= 9);
  await sleep(50);
  assert.deepEqual(s.data(), range(1, 9));
  assert.deepEqual(s.pubs.map((p) => p.offset), range(1, 9));
});

test("a namespace's history_meta_ttl: its streams' positions go after it (a new epoch), so a client coming back later is told recovered: false", async () => {
  const first = await node.api.publish('brief:a', 1);
  const s = await subscriber(node, 'r0', 'brief:a', { since: { offset: first.offset!, epoch: first.epoch! } });
  assert.equal(s.subscribed[0]!.recovered, true);
  s.c.disconnect();
  await sleep(1200);
  const top = await node.api.history('brief:a', { limit: 0 });
  assert.equal(top.offset, 0, 'the position went with its TTL');
  assert.notEqual(top.epoch, first.epoch);
  const again = await subscriber(node, 'r0', 'brief:a', { since: { offset: first.offset!, epoch: first.epoch! } });
  assert.equal(again.subscribed[0]!.wasRecovering, true);
  assert.equal(again.subscribed[0]!.recovered, false);
  again.c.disconnect();
});

test('nothing missed: recovered true, no duplicates', async () => {
  const s = await subscriber(node, 'r2', 'rec:b');
  for (const i of range(1, 3)) await node.api.publish('rec:b', i);
  await until(() => s.pubs.length === 3);
  await node.api.disconnect('r2', { disconnect: { code: 3011, reason: '' } });
  await until(() => s.subscribed.length === 2, 3000, 'resubscribed');
  assert.equal(s.subscribed[1]!.recovered, true);
  assert.equal(s.subscribed[1]!.hasRecoveredPublications, false);
  assert.equal(s.subscribed[1]!.streamPosition?.offset, 3);
  await node.api.publish('rec:b', 4);
  await until(() => s.pubs.length === 4);
  await sleep(50);
  assert.deepEqual(s.data(), [1, 2, 3, 4]);
});

test('continuous publishing through repeated forced reconnects: every publication exactly once, in order', async () => {
  const s = await subscriber(node, 'r3', 'rec:stress', {}, { minReconnectDelay: 10, maxReconnectDelay: 40 });
  const total = 300;
  let published = 0;
  const publisher = (async () => {
    for (let i = 1; i <= total; i++) {
      await node.api.publish('rec:stress', i);
      published = i;
      if (i % 10 === 0) await sleep(2);
    }
  })();
  const codes = [3011, 3001, 4000, 3011, 3012, 3011];
  for (const [i, code] of codes.entries()) {
    await until(() => published >= (i + 1) * 40, 5000, 'publisher progress');
    await s.sub.ready(3000);
    await node.api.disconnect('r3', { disconnect: { code, reason: 'test' } });
  }
  await publisher;
  await until(() => s.pubs.length >= total, 8000, `all ${total} publications (got ${s.pubs.length})`);
  await sleep(100);
  assert.deepEqual(s.data(), range(1, total));
  assert.equal(s.subscribed.length, codes.length + 1, 'it resubscribed after every disconnect');
  assert.ok(s.subscribed.some((ctx) => ctx.hasRecoveredPublications), 'some publications came by recovery');
  for (const ctx of s.subscribed.slice(1)) {
    assert.equal(ctx.wasRecovering, true);
    assert.equal(ctx.recovered, true);
  }
});

test('trimmed history (more missed than history_size): recovered false, wasRecovering true, no silent gap', async () => {
  const s = await subscriber(node, 'r4', 'short:a', {}, { minReconnectDelay: 300, maxReconnectDelay: 400 });
  await node.api.publish('short:a', 1);
  await until(() => s.pubs.length === 1);
  await node.api.disconnect('r4', { disconnect: { code: 3011, reason: '' } });
  for (const i of range(2, 11)) await node.api.publish('short:a', i);
  await until(() => s.subscribed.length === 2, 3000, 'resubscribed');
  const ctx = s.subscribed[1]!;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, false, 'the app is told to reload its state');
  assert.equal(ctx.streamPosition?.offset, 11, 'the position moves to the top of the stream');
  await sleep(50);
  assert.deepEqual(s.data(), [1], 'no partial history is passed off as a recovery');
  // Live publications continue from the new position, without another resubscribe.
  await node.api.publish('short:a', 12);
  await until(() => s.pubs.length === 2);
  assert.deepEqual(s.data(), [1, 12]);
  await sleep(50);
  assert.equal(s.subscribed.length, 2);
});

test('getState: an unrecoverable position gives 112, the SDK reloads state and subscribes from it', async () => {
  const position = async () => {
    const h = await node.api.history('short:state', { limit: 0 });
    return { offset: h.offset, epoch: h.epoch };
  };
  let loads = 0;
  const s = await subscriber(
    node,
    'r5',
    'short:state',
    {
      getState: async () => {
        loads++;
        return position();
      },
    },
    { minReconnectDelay: 300, maxReconnectDelay: 400 },
  );
  assert.equal(loads, 1);
  await node.api.publish('short:state', 1);
  await until(() => s.pubs.length === 1);
  await node.api.disconnect('r5', { disconnect: { code: 3011, reason: '' } });
  for (const i of range(2, 8)) await node.api.publish('short:state', i);
  await until(() => loads === 2, 3000, 'getState after 112');
  await until(() => s.sub.state === 'subscribed');
  await node.api.publish('short:state', 9);
  await until(() => s.pubs.length === 2);
  assert.deepEqual(s.data(), [1, 9]);
});

test('the `since` option recovers from a known position on the first subscribe', async () => {
  const results = [];
  for (const i of range(1, 5)) results.push(await node.api.publish('rec:since', i));
  const since = { offset: results[1]!.offset!, epoch: results[1]!.epoch! };
  const s = await subscriber(node, 'r6', 'rec:since', { since });
  assert.equal(s.subscribed[0]!.wasRecovering, true);
  assert.equal(s.subscribed[0]!.recovered, true);
  await until(() => s.pubs.length === 3);
  assert.deepEqual(s.data(), [3, 4, 5]);
});

test('a new epoch (node restarted, memory stream lost): recovered false, then live again', async () => {
  const first = await startNode({ channel: { namespaces: [ns('rec', 100)] } });
  const port = first.port;
  const s = await subscriber(first, 'r7', 'rec:epoch');
  await first.api.publish('rec:epoch', 1);
  await until(() => s.pubs.length === 1);
  const epochBefore = s.subscribed[0]!.streamPosition!.epoch;
  await first.herald.close(); // clients get 3001 and reconnect
  const second = await startNode({ port, channel: { namespaces: [ns('rec', 100)] } });
  second.clients.add(s.c);
  try {
    await until(() => s.subscribed.length === 2, 5000, 'resubscribed to the new node');
    const ctx = s.subscribed[1]!;
    assert.equal(ctx.wasRecovering, true);
    assert.equal(ctx.recovered, false);
    assert.notEqual(ctx.streamPosition?.epoch, epochBefore);
    await second.api.publish('rec:epoch', 'fresh');
    await until(() => s.pubs.length === 2);
    assert.deepEqual(s.data(), [1, 'fresh']);
  } finally {
    await second.close();
  }
});

test('channel.history_meta_ttl (Centrifugo v6\'s key) sets how long a stream position is kept, in place of engine.history_meta_ttl', async () => {
  const node = await startNode({
    engine: { history_meta_ttl: '1h' },
    channel: { history_meta_ttl: '300ms', namespaces: [openNamespace('tmp', { history_size: 10, history_ttl: '200ms' })] },
  });
  try {
    const first = (await node.api.publish('tmp:meta', 1)) as { offset: number; epoch: string };
    await sleep(700); // past 300 ms (it would be kept an hour by engine.history_meta_ttl)
    const second = (await node.api.publish('tmp:meta', 2)) as { offset: number; epoch: string };
    assert.equal(second.offset, 1, 'a new stream');
    assert.notEqual(second.epoch, first.epoch);
  } finally {
    await node.close();
  }
});

test('the stream expires under a live subscription: unsubscribe 2500, the SDK resubscribes, recovered false', async () => {
  const short = await startNode({
    engine: { history_meta_ttl: '600ms' },
    channel: { namespaces: [openNamespace('tmp', { history_size: 10, history_ttl: '300ms', force_recovery: true })] },
  });
  try {
    const s = await subscriber(short, 'r8', 'tmp:a');
    const codes: number[] = [];
    s.sub.on('subscribing', (ctx) => codes.push(ctx.code));
    await short.api.publish('tmp:a', 1);
    await until(() => s.pubs.length === 1);
    const epoch = s.subscribed[0]!.streamPosition!.epoch;
    await sleep(800); // the stream's meta is gone: the next publication starts a new epoch
    await short.api.publish('tmp:a', 2);
    await until(() => s.subscribed.length === 2, 3000, 'resubscribed');
    assert.deepEqual(codes.slice(-1), [2500]);
    assert.equal(s.subscribed[1]!.wasRecovering, true);
    assert.equal(s.subscribed[1]!.recovered, false);
    assert.notEqual(s.subscribed[1]!.streamPosition!.epoch, epoch);
    await short.api.publish('tmp:a', 3);
    await until(() => s.pubs.length === 2);
    assert.deepEqual(s.data(), [1, 3], 'told to reload, then live again');
  } finally {
    await short.close();
  }
});
