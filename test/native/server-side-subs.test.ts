// Server-side subscriptions: from the connection token (`channels`, `subs`) and from the server API
// (`subscribe` / `unsubscribe`), seen as client-level events by centrifuge-js; their recovery over a
// reconnect; and the API actions on connections (disconnect, refresh).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { client, once, openNamespace, record, sign, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

let node: TestNode;
before(async () => {
  node = await startNode({
    channel: {
      namespaces: [
        openNamespace('news'),
        { name: 'srv' }, // closed to clients: only the server subscribes connections here
        { name: 'srvrec', history_size: 100, history_ttl: '60s', force_recovery: true },
        { name: 'srvpres', presence: true },
      ],
    },
  });
});
after(() => node.close());

interface ClientEvents {
  c: Centrifuge;
  /** The client id from the `connected` event. */
  id: string;
  pubs: Array<{ channel: string; data: any; offset?: number }>;
  subscribed: Array<{ channel: string; recovered: boolean; wasRecovering: boolean; data?: unknown }>;
  unsubscribed: Array<{ channel: string }>;
}

async function connectWith(claims: Record<string, unknown>, opts: Parameters<typeof client>[1] = {}): Promise<ClientEvents> {
  const c = client(node, { token: await sign(claims, { expIn: 3600 }), ...opts });
  const ev: ClientEvents = { c, id: '', pubs: [], subscribed: [], unsubscribed: [] };
  c.on('connected', (ctx) => (ev.id = ctx.client));
  c.on('publication', (ctx) => ev.pubs.push(ctx));
  c.on('subscribed', (ctx) => ev.subscribed.push(ctx));
  c.on('unsubscribed', (ctx) => ev.unsubscribed.push(ctx));
  c.connect();
  await c.ready(3000);
  return ev;
}

test('token `channels`: subscribed at connect, publications arrive as client-level events', async () => {
  const ev = await connectWith({ sub: 'u1', channels: ['srv:a', 'news:a'] });
  assert.deepEqual(ev.subscribed.map((s) => s.channel).sort(), ['news:a', 'srv:a']);
  await node.api.publish('srv:a', { n: 1 });
  await node.api.publish('news:a', { n: 2 });
  await until(() => ev.pubs.length === 2);
  assert.deepEqual(ev.pubs.map((p) => [p.channel, p.data]), [['srv:a', { n: 1 }], ['news:a', { n: 2 }]]);

  const raw = await RawClient.open(node.wsUrl);
  const result = await raw.connect({ token: await sign({ sub: 'u1', channels: ['srv:a'] }) });
  assert.deepEqual(result.subs, { 'srv:a': {} });
  // A client-side subscribe to a channel the server subscribed: 105.
  assert.equal((await raw.call('subscribe', { channel: 'srv:a' })).error?.code, 105);
  raw.close();
});

test('token `subs`: data in the subscribed event; an unknown namespace fails the connect with 102', async () => {
  const ev = await connectWith({ sub: 'u2', subs: { 'srv:b': { data: { hello: 'srv' } } } });
  assert.deepEqual(ev.subscribed.map((s) => [s.channel, s.data]), [['srv:b', { hello: 'srv' }]]);

  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: { token: await sign({ sub: 'u2', channels: ['nope:1'] }) } });
  assert.equal((await raw.reply(1)).error?.code, 102);
  raw.close();

  const c = client(node, { token: await sign({ sub: 'u2', channels: ['nope:1'] }) });
  const disconnected = once<{ code: number }>(c, 'disconnected');
  c.connect();
  assert.equal((await disconnected).code, 102);
});

test('server-side subscription with recovery: missed publications come back once, in order, after a reconnect', async () => {
  const ev = await connectWith({ sub: 'u3', channels: ['srvrec:a'] }, { minReconnectDelay: 300, maxReconnectDelay: 400 });
  for (let i = 1; i <= 3; i++) await node.api.publish('srvrec:a', i);
  await until(() => ev.pubs.length === 3);
  await node.api.disconnect('u3', { disconnect: { code: 3011, reason: 'force reconnect' } });
  for (let i = 4; i <= 7; i++) await node.api.publish('srvrec:a', i);
  await until(() => ev.subscribed.length === 2, 3000, 'subscribed again at reconnect');
  assert.equal(ev.subscribed[1]!.wasRecovering, true);
  assert.equal(ev.subscribed[1]!.recovered, true);
  await node.api.publish('srvrec:a', 8);
  await until(() => ev.pubs.length >= 8);
  await sleep(50);
  assert.deepEqual(ev.pubs.map((p) => p.data), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(ev.pubs.map((p) => p.offset), [1, 2, 3, 4, 5, 6, 7, 8]);

  // On the wire: the connect result carries the recovered publications.
  const top = await node.api.history('srvrec:a', { limit: 0 });
  const raw = await RawClient.open(node.wsUrl);
  const result = await raw.connect({
    token: await sign({ sub: 'u3', channels: ['srvrec:a'] }),
    subs: { 'srvrec:a': { recover: true, offset: 6, epoch: top.epoch } },
  });
  const sub = result.subs['srvrec:a'];
  assert.equal(sub.recovered, true);
  assert.equal(sub.was_recovering, true);
  assert.deepEqual(sub.publications.map((p: { data: number }) => p.data), [7, 8]);
  raw.close();
});

test('API subscribe: a subscribe push, then publications; API unsubscribe: unsubscribed, no more publications', async () => {
  const ev = await connectWith({ sub: 'u4' });
  await node.api.subscribe('u4', 'srv:c', { data: { why: 'api' } });
  await until(() => ev.subscribed.length === 1, 3000, 'subscribed event');
  assert.equal(ev.subscribed[0]!.channel, 'srv:c');
  assert.deepEqual(ev.subscribed[0]!.data, { why: 'api' });
  await node.api.publish('srv:c', 'one');
  await until(() => ev.pubs.length === 1);
  await node.api.subscribe('u4', 'srv:c'); // already subscribed: nothing new
  await node.api.unsubscribe('u4', 'srv:c');
  await until(() => ev.unsubscribed.length === 1, 3000, 'unsubscribed event');
  assert.equal(ev.unsubscribed[0]!.channel, 'srv:c');
  await node.api.publish('srv:c', 'two');
  await sleep(100);
  assert.deepEqual(ev.pubs.map((p) => p.data), ['one']);
  assert.equal(ev.subscribed.length, 1);
  assert.equal(ev.c.state, 'connected');

  // On the wire.
  const raw = await RawClient.open(node.wsUrl);
  await raw.connect({ token: await userToken('u5') });
  await node.api.subscribe('u5', 'srvrec:w');
  const push = await raw.waitFor((m) => m.push?.subscribe !== undefined);
  assert.equal(push.push.channel, 'srvrec:w');
  assert.equal(push.push.subscribe.recoverable, true);
  assert.equal(push.push.subscribe.positioned, true);
  assert.match(push.push.subscribe.epoch, /^[a-zA-Z]{8}$/);
  await node.api.unsubscribe('u5', 'srvrec:w');
  const un = await raw.waitFor((m) => m.push?.unsubscribe !== undefined);
  assert.deepEqual(un, { push: { channel: 'srvrec:w', unsubscribe: { code: 2000, reason: 'server unsubscribe' } } });
  raw.close();
});

test('API unsubscribe of a client-side subscription ends it (code 2000, terminal)', async () => {
  const c = client(node, { token: await userToken('u6') });
  const sub = c.newSubscription('news:api-unsub');
  sub.subscribe();
  c.connect();
  await sub.ready(3000);
  const unsubscribed = once<{ code: number }>(sub, 'unsubscribed');
  await node.api.unsubscribe('u6', 'news:api-unsub');
  assert.equal((await unsubscribed).code, 2000);
  await sleep(200);
  assert.equal(sub.state, 'unsubscribed');
});

test('API subscribe: unknown namespace 102; a user with no connection is fine; only the given client', async () => {
  await assert.rejects(node.api.subscribe('u7', 'nope:x'), (err: { apiCode?: number }) => err.apiCode === 102);
  assert.deepEqual(await node.api.subscribe('nobody-here', 'srv:x'), {});
  const a = await connectWith({ sub: 'u7' });
  const b = await connectWith({ sub: 'u7' });
  await node.api.subscribe('u7', 'srv:only-a', { client: a.id });
  await until(() => a.subscribed.length === 1);
  await sleep(100);
  assert.equal(b.subscribed.length, 0);
});

test('API disconnect: default 3503 is terminal; a reconnect code reconnects; whitelist and client narrow it', async () => {
  const a = await connectWith({ sub: 'u8' });
  const disconnected = once<{ code: number; reason: string }>(a.c, 'disconnected');
  await node.api.disconnect('u8');
  const ctx = await disconnected;
  assert.equal(ctx.code, 3503);
  await sleep(300);
  assert.equal(a.c.state, 'disconnected');

  const b = await connectWith({ sub: 'u9' });
  const keep = await connectWith({ sub: 'u9' });
  const connecting = once<{ code: number; reason: string }>(b.c, 'connecting');
  const keepLog: string[] = [];
  keep.c.on('connecting', () => keepLog.push('connecting'));
  await node.api.disconnect('u9', { whitelist: [keep.id], disconnect: { code: 4001, reason: 'app reconnect' } });
  const ctx2 = await connecting;
  assert.equal(ctx2.code, 4001);
  assert.equal(ctx2.reason, 'app reconnect');
  await b.c.ready(3000);
  assert.deepEqual(keepLog, [], 'the whitelisted connection stays');
});

test('API refresh expired: the connection closes with 3005 and the SDK reconnects', async () => {
  const a = await connectWith({ sub: 'u10' });
  const connecting = once<{ code: number }>(a.c, 'connecting');
  await node.api.refresh('u10', { expired: true });
  assert.equal((await connecting).code, 3005);
  await a.c.ready(3000);
});

test('API disconnect with a long reason (multi-byte too): the code still reaches the client', async () => {
  for (const reason of ['r'.repeat(300), 'żółw ✓ '.repeat(40)]) {
    const a = await connectWith({ sub: 'u11' });
    const disconnected = once<{ code: number; reason: string }>(a.c, 'disconnected');
    await node.api.disconnect('u11', { disconnect: { code: 4501, reason } });
    const ctx = await disconnected;
    assert.equal(ctx.code, 4501, 'an application terminal code, not a dropped connection');
    assert.ok(Buffer.byteLength(ctx.reason) <= 123);
    assert.ok(reason.startsWith(ctx.reason) && ctx.reason.length > 0, 'the reason is cut, not replaced');
  }
});

test('a server-side subscription whose stream moved to a new epoch: disconnect 3010, reconnect, recovered false', async () => {
  const short = await startNode({
    engine: { history_meta_ttl: '600ms' },
    channel: { namespaces: [{ name: 'tmp', history_size: 10, history_ttl: '300ms', force_recovery: true }] },
  });
  try {
    const c = client(short, { token: await sign({ sub: 'u12', channels: ['tmp:a'] }, { expIn: 3600 }) });
    const subscribed: Array<{ recovered: boolean; wasRecovering: boolean }> = [];
    const data: unknown[] = [];
    c.on('subscribed', (ctx) => subscribed.push(ctx));
    c.on('publication', (ctx) => data.push(ctx.data));
    const connecting = record(c, 'connecting');
    c.connect();
    await c.ready(3000);
    await short.api.publish('tmp:a', 1);
    await until(() => data.length === 1);
    await sleep(800); // the stream's meta expires: the next publication starts a new epoch
    await short.api.publish('tmp:a', 2);
    await until(() => subscribed.length === 2, 3000, 'subscribed again after the reconnect');
    assert.equal(connecting.at(-1)?.[1]?.code, 3010);
    assert.equal(subscribed[1]!.wasRecovering, true);
    assert.equal(subscribed[1]!.recovered, false);
    await short.api.publish('tmp:a', 3);
    await until(() => data.length === 2);
    assert.deepEqual(data, [1, 3]);
  } finally {
    await short.close();
  }
});

test('API subscribe with recover_since: the missed publications follow the subscribe push, once, in order', async () => {
  const ev = await connectWith({ sub: 'u13' });
  let top = { offset: 0, epoch: '' };
  for (let i = 1; i <= 5; i++) top = (await node.api.publish('srvrec:since', i)) as typeof top;
  await node.api.call('subscribe', { user: 'u13', channel: 'srvrec:since', recover_since: { offset: 2, epoch: top.epoch } });
  await until(() => ev.subscribed.length === 1, 3000, 'subscribed event');
  await node.api.publish('srvrec:since', 6);
  await until(() => ev.pubs.length >= 4, 3000, `publications (got ${JSON.stringify(ev.pubs.map((p) => p.data))})`);
  await sleep(50);
  assert.deepEqual(ev.pubs.map((p) => p.data), [3, 4, 5, 6]);
  assert.deepEqual(ev.pubs.map((p) => p.offset), [3, 4, 5, 6]);
});

test('API subscribe with override: the namespace\'s force_recovery turned off for this subscription, as a token\'s override does; a malformed override is 107', async () => {
  const raw = await RawClient.open(node.wsUrl);
  await raw.connect({ token: await userToken('u14') });
  await node.api.call('subscribe', { user: 'u14', channel: 'srvrec:ovr', override: { force_recovery: { value: false } } });
  const push = await raw.waitFor((m) => m.push?.subscribe !== undefined);
  assert.equal(push.push.channel, 'srvrec:ovr');
  assert.deepEqual([push.push.subscribe.recoverable, push.push.subscribe.positioned], [undefined, undefined], 'neither recoverable nor positioned');
  // presence: given without `value` (`{}`), the flag is false, as Centrifugo reads it.
  await node.api.call('subscribe', { user: 'u14', channel: 'srvpres:off', override: { presence: {} } });
  await node.api.call('subscribe', { user: 'u14', channel: 'srvpres:on' });
  await raw.waitFor((m) => m.push?.channel === 'srvpres:on' && m.push.subscribe !== undefined);
  const present = async (channel: string) => Object.keys(((await node.api.call('presence', { channel })) as { presence: object }).presence);
  await until(async () => (await present('srvpres:on')).length === 1, 3000, 'presence on srvpres:on');
  assert.deepEqual(await present('srvpres:off'), []);
  raw.close();
  for (const override of [{ force_recovery: true }, { nope: { value: true } }, { presence: { value: 'yes' } }, ['force_recovery']]) {
    await assert.rejects(node.api.call('subscribe', { user: 'u14', channel: 'srvrec:ovr2', override }), (err: { apiCode?: number }) => err.apiCode === 107, JSON.stringify(override));
  }
});

test('token `channels` naming a channel twice: one subscription, each publication once', async () => {
  const subs = async () => ((await node.api.info()).nodes[0] as Record<string, number>).num_subs!;
  const before = await subs();
  const ev = await connectWith({ sub: 'u9', channels: ['srv:dup', 'srv:dup'] });
  assert.deepEqual(ev.subscribed.map((s) => s.channel), ['srv:dup']);
  assert.equal(await subs(), before + 1, 'the node holds one subscription for it');
  for (let n = 1; n <= 3; n++) await node.api.publish('srv:dup', { n });
  await until(() => ev.pubs.length >= 3);
  await node.api.publish('srv:dup', { n: 4 }); // a duplicate of 1-3 would arrive before this one
  await until(() => ev.pubs.some((p) => p.data.n === 4));
  assert.deepEqual(ev.pubs.map((p) => p.data.n), [1, 2, 3, 4]);
  ev.c.disconnect();
});
