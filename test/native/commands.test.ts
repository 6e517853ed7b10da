// Client commands after connect: publish (allowed or denied by namespace flags), history (limit,
// since, reverse, errors), unsubscribe, presence where it is off, rpc and send, through centrifuge-js
// and raw ws (presence itself: presence.test.ts).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { client, collect, once, openNamespace, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

let node: TestNode;
const history = { history_size: 5, history_ttl: '60s' };
before(async () => {
  node = await startNode({
    client: { allow_anonymous_connect_without_token: true },
    channel: {
      namespaces: [
        openNamespace('pub', { allow_publish_for_client: true }),
        openNamespace('subpub', { allow_publish_for_subscriber: true }),
        openNamespace('anonpub', { allow_publish_for_client: true, allow_publish_for_anonymous: true }),
        openNamespace('ro'),
        openNamespace('hist', { ...history, allow_history_for_subscriber: true }),
        openNamespace('histc', { ...history, allow_history_for_client: true }),
        openNamespace('nohist', { allow_history_for_client: true }),
      ],
    },
  });
});
after(() => node.close());

async function sdk(user = 'alice'): Promise<Centrifuge> {
  const c = client(node, user ? { token: await userToken(user) } : {});
  c.connect();
  await c.ready(3000);
  return c;
}

async function raw(user = 'alice'): Promise<RawClient> {
  const r = await RawClient.open(node.wsUrl);
  await r.connect(user ? { token: await userToken(user) } : {});
  return r;
}

const code = async (p: Promise<unknown>): Promise<number | undefined> => {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code;
  }
};

test('publish where allowed: {} and every subscriber (the publisher too) gets it with publisher info', async () => {
  const c = await sdk('alice');
  const sub = c.newSubscription('pub:1');
  const pubs: Array<{ data: unknown; info?: { user: string; client: string } }> = [];
  sub.on('publication', (ctx) => pubs.push(ctx));
  sub.subscribe();
  await sub.ready(2000);
  assert.deepEqual(await c.publish('pub:1', { text: 'hi' }), {});
  await until(() => pubs.length === 1);
  assert.deepEqual(pubs[0]!.data, { text: 'hi' });
  assert.equal(pubs[0]!.info?.user, 'alice');

  const r = await raw('bob');
  const id = r.id();
  r.send({ id, publish: { channel: 'pub:1', data: 'from raw' } });
  await r.reply(id);
  assert.equal(r.frames.at(-1), `{"id":${id},"publish":{}}`);
  await until(() => pubs.length === 2);
  assert.equal(pubs[1]!.data, 'from raw');
  assert.equal(pubs[1]!.info?.user, 'bob');
  r.close();
  c.disconnect();
});

test('publish where not allowed: 103; unknown namespace 102; missing data 107; empty channel 3501', async () => {
  const c = await sdk('alice');
  assert.equal(await code(c.publish('ro:1', 1)), 103);
  assert.equal(await code(c.publish('nope:1', 1)), 102);
  assert.equal(await code(c.publish('subpub:1', 1)), 103, 'allow_publish_for_subscriber needs a subscription');
  const sub = c.newSubscription('subpub:1');
  sub.subscribe();
  await sub.ready(2000);
  assert.deepEqual(await sub.publish({ ok: true }), {});
  assert.equal(c.state, 'connected');
  c.disconnect();

  const anon = await sdk('');
  assert.equal(await code(anon.publish('pub:1', 1)), 103, 'anonymous needs allow_publish_for_anonymous');
  assert.deepEqual(await anon.publish('anonpub:1', 1), {});
  anon.disconnect();

  const r = await raw('alice');
  assert.deepEqual((await r.call('publish', { channel: 'pub:1' })).error, { code: 107, message: 'bad request' });
  r.send({ id: r.id(), publish: { channel: '', data: 1 } });
  assert.equal((await r.waitClose()).code, 3501);
});

test('an anonymous publisher appears with user "" (user and client are always written)', async () => {
  const watcher = await raw('bob');
  await watcher.call('subscribe', { channel: 'anonpub:w' });
  const anon = await raw('');
  await anon.call('publish', { channel: 'anonpub:w', data: { a: 1 } });
  const push = await watcher.waitFor((m) => m.push?.channel === 'anonpub:w');
  assert.equal(push.push.pub.info.user, '');
  assert.equal(typeof push.push.pub.info.client, 'string');
  assert.equal('conn_info' in push.push.pub.info, false);
  watcher.close();
  anon.close();
});

test('history: limit, since, reverse, capped to history_size, with the top position', async () => {
  const published = [];
  for (let i = 1; i <= 8; i++) published.push(await node.api.publish('histc:1', { i }));
  const epoch = published[0]!.epoch!;
  const c = await sdk('alice');
  const offsets = (r: { publications: Array<{ offset?: number }> }) => r.publications.map((p) => p.offset);

  const all = await c.history('histc:1', { limit: 10 });
  assert.deepEqual(offsets(all), [4, 5, 6, 7, 8], 'only the newest history_size are kept');
  assert.deepEqual(all.publications.map((p) => p.data), [4, 5, 6, 7, 8].map((i) => ({ i })));
  assert.equal(all.offset, 8);
  assert.equal(all.epoch, epoch);
  assert.deepEqual(offsets(await c.history('histc:1', { limit: 2 })), [4, 5]);
  assert.deepEqual(offsets(await c.history('histc:1', { limit: -1 })), [4, 5, 6, 7, 8], 'limit -1 is capped, not an error');
  assert.deepEqual(offsets(await c.history('histc:1', { limit: 10, since: { offset: 6, epoch } })), [7, 8]);
  assert.deepEqual(offsets(await c.history('histc:1', { limit: 2, reverse: true })), [8, 7]);
  assert.deepEqual(offsets(await c.history('histc:1', { limit: 10, reverse: true, since: { offset: 6, epoch } })), [5, 4]);
  const position = await c.history('histc:1', { limit: 0 });
  assert.deepEqual(position.publications, []);
  assert.equal(position.offset, 8);
  assert.equal(position.epoch, epoch);

  assert.equal(await code(c.history('histc:1', { limit: 10, since: { offset: 6, epoch: 'otherEpk' } })), 112);
  c.disconnect();
});

test('history errors: not available 108, not permitted 103, unknown namespace 102, reverse from 0 is 107', async () => {
  const c = await sdk('alice');
  assert.equal(await code(c.history('nohist:1', { limit: 10 })), 108);
  assert.equal(await code(c.history('pub:1', { limit: 10 })), 108);
  assert.equal(await code(c.history('hist:1', { limit: 10 })), 103, 'allow_history_for_subscriber needs a subscription');
  assert.equal(await code(c.history('nope:1', { limit: 10 })), 102);
  const sub = c.newSubscription('hist:1');
  sub.subscribe();
  await sub.ready(2000);
  await node.api.publish('hist:1', 'x');
  const h = await sub.history({ limit: 10 });
  assert.deepEqual(h.publications.map((p) => p.data), ['x']);
  c.disconnect();
  const anon = await sdk('');
  assert.equal(await code(anon.history('histc:1', { limit: 1 })), 103, 'anonymous needs allow_history_for_anonymous');
  anon.disconnect();

  const r = await raw('alice');
  assert.equal((await r.call('history', { channel: 'histc:1', limit: 1, reverse: true, since: { offset: 0, epoch: '' } })).error?.code, 107);
  r.close();
});

test('history reply always carries publications, epoch and offset, even for an empty stream', async () => {
  const r = await raw('alice');
  const id = r.id();
  r.send({ id, history: { channel: 'histc:empty', limit: 10 } });
  const reply = await r.reply(id);
  assert.deepEqual(reply.history.publications, []);
  assert.equal(reply.history.offset, 0);
  assert.match(reply.history.epoch, /^[a-zA-Z]{8}$/);
  assert.match(r.frames.at(-1)!, new RegExp(`^\\{"id":${id},"history":\\{`));
  r.close();
});

test('unsubscribe: {} (also for a channel never subscribed), publications stop', async () => {
  const r = await raw('alice');
  const id = r.id();
  r.send({ id, unsubscribe: { channel: 'pub:never' } });
  await r.reply(id);
  assert.equal(r.frames.at(-1), `{"id":${id},"unsubscribe":{}}`);

  await r.call('subscribe', { channel: 'pub:u' });
  await node.api.publish('pub:u', 1);
  await r.waitFor((m) => m.push?.channel === 'pub:u');
  assert.deepEqual((await r.call('unsubscribe', { channel: 'pub:u' })).unsubscribe, {});
  await node.api.publish('pub:u', 2);
  await sleep(100);
  assert.deepEqual(r.pushes('pub:u').map((p) => p.data), [1]);
  assert.deepEqual((await r.call('unsubscribe', { channel: 'pub:u' })).unsubscribe, {}, 'twice is fine');
  r.send({ id: r.id(), unsubscribe: { channel: '' } });
  assert.equal((await r.waitClose()).code, 3501);
});

test('presence and presence_stats where the namespace keeps no presence, and rpc: 108 not available; the connection stays', async () => {
  const c = await sdk('alice');
  const sub = c.newSubscription('pub:p');
  sub.subscribe();
  await sub.ready(2000);
  assert.equal(await code(sub.presence()), 108);
  assert.equal(await code(sub.presenceStats()), 108);
  assert.equal(await code(c.presence('pub:p')), 108);
  assert.equal(await code(c.rpc('anything', { x: 1 })), 108);
  assert.equal(c.state, 'connected');
  c.disconnect();

  const r = await raw('alice');
  assert.deepEqual((await r.call('rpc', { method: 'm', data: {} })).error, { code: 108, message: 'not available' });
  assert.deepEqual((await r.call('presence', { channel: 'pub:p' })).error, { code: 108, message: 'not available' });
  assert.equal(r.closeInfo, undefined);
  r.close();
});

test('send (no handler): disconnect 3508, terminal for centrifuge-js', async () => {
  const r = await raw('alice');
  r.send({ send: { data: { hello: 1 } } });
  assert.equal((await r.waitClose()).code, 3508);

  const c = await sdk('alice');
  const disconnected = once<{ code: number }>(c, 'disconnected');
  await c.send({ hello: 1 });
  assert.equal((await disconnected).code, 3508);
  await sleep(300);
  assert.equal(c.state, 'disconnected');
});

test('publications keep the published JSON exactly (raw JSON, no base64, one line)', async () => {
  const r = await raw('alice');
  await r.call('subscribe', { channel: 'pub:json' });
  const value = { s: 'line1\nline2', u: 'żółw ✓ \u2028', n: 1.5e300, neg: -0, arr: [null, true, {}], big: 'x'.repeat(1000) };
  await node.api.publish('pub:json', value);
  await r.call('publish', { channel: 'pub:json', data: value });
  await r.waitFor((m) => m.push?.channel === 'pub:json' && m.push.pub.info !== undefined);
  const pubs = r.pushes('pub:json');
  assert.deepEqual(pubs.map((p) => p.data), [JSON.parse(JSON.stringify(value)), JSON.parse(JSON.stringify(value))]);
  for (const frame of r.frames) {
    for (const line of frame.split('\n')) assert.doesNotThrow(() => JSON.parse(line), `each line is one JSON message: ${line.slice(0, 80)}`);
  }
  r.close();
});

test('a subscription collects every publication of a burst, in order', async () => {
  const c = await sdk('alice');
  const sub = c.newSubscription('pub:burst');
  const got = collect(sub);
  sub.subscribe();
  await sub.ready(2000);
  await Promise.all(Array.from({ length: 200 }, (_, i) => node.herald.publish('pub:burst', i)));
  await until(() => got.length === 200, 5000, '200 publications');
  assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i));
  c.disconnect();
});
