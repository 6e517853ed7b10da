// Server API calls that act on connections: subscribe, unsubscribe, disconnect, refresh, channels, info.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { client, once, record, sign, startNode, until, type TestNode } from '../helpers/herald.js';
import { startBackend, type BackendRequest } from '../helpers/backend.js';

let node: TestNode;
before(async () => {
  node = await startNode({
    channel: {
      namespaces: [
        { name: 'room', allow_subscribe_for_client: true },
        { name: 'srv', history_size: 10, history_ttl: '60s', force_recovery: true },
      ],
    },
  });
});
after(() => node.close());

test('API subscribe adds a server-side subscription; unsubscribe removes it', async () => {
  const c = client(node, { token: await sign({ sub: 'bob' }) });
  const got: unknown[] = [];
  c.on('publication', (ctx) => got.push({ channel: ctx.channel, data: ctx.data }));
  const subscribed = once<{ channel: string }>(c, 'subscribed');
  c.connect();
  await once(c, 'connected');
  await node.api.subscribe('bob', 'srv:news');
  assert.equal((await subscribed).channel, 'srv:news');
  await node.api.publish('srv:news', { n: 1 });
  await until(() => got.length === 1, 5000, 'server-side publication');
  assert.deepEqual(got[0], { channel: 'srv:news', data: { n: 1 } });
  const unsubscribed = once<{ channel: string }>(c, 'unsubscribed');
  await node.api.unsubscribe('bob', 'srv:news');
  assert.equal((await unsubscribed).channel, 'srv:news');
  await node.api.publish('srv:news', { n: 2 });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(got.length, 1);
  c.disconnect();
});

test('API disconnect: default code 3503 ends the connection for good; whitelist keeps a client', async () => {
  const a = client(node, { token: await sign({ sub: 'carol' }) });
  const b = client(node, { token: await sign({ sub: 'carol' }) });
  a.connect();
  b.connect();
  await Promise.all([once(a, 'connected'), once(b, 'connected')]);
  const keep = (b as unknown as { _client: string })._client;
  const gone = once<{ code: number }>(a, 'disconnected');
  await node.api.disconnect('carol', { whitelist: [keep] });
  assert.equal((await gone).code, 3503);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(a.state, 'disconnected');
  assert.equal(b.state, 'connected');
  b.disconnect();
});

test('API disconnect with a reconnect code: the client comes back by itself', async () => {
  const c = client(node, { token: await sign({ sub: 'dave' }) });
  c.connect();
  await once(c, 'connected');
  const connecting = once<{ code: number }>(c, 'connecting');
  await node.api.disconnect('dave', { disconnect: { code: 3011, reason: 'force reconnect' } });
  assert.equal((await connecting).code, 3011);
  await once(c, 'connected');
  c.disconnect();
});

test('API refresh with expired: true closes with 3005 (connection expired)', async () => {
  const c = client(node, { token: await sign({ sub: 'erin' }) });
  c.connect();
  await once(c, 'connected');
  const connecting = once<{ code: number }>(c, 'connecting');
  await node.api.refresh('erin', { expired: true });
  assert.equal((await connecting).code, 3005);
  c.disconnect();
});

test('channels and info count this node\'s clients and subscriptions', async () => {
  const clients = await Promise.all(['u1', 'u2'].map(async (u) => client(node, { token: await sign({ sub: u }) })));
  for (const c of clients) {
    const s = c.newSubscription('room:lobby');
    s.subscribe();
    c.connect();
    await s.ready(5000);
  }
  const { channels } = await node.api.channels('room:*');
  assert.deepEqual(channels, { 'room:lobby': { num_clients: 2 } });
  assert.deepEqual((await node.api.channels('nomatch*')).channels, {});
  const info = (await node.api.info()).nodes[0] as Record<string, number>;
  assert.equal(info.num_clients, 2);
  assert.equal(info.num_users, 2);
  assert.equal(info.num_subs, 2);
  for (const c of clients) c.disconnect();
});

test('API subscribe with expire_at: the server-side subscription ends the connection (3006) once expired and its grace passed (one already past: after the grace); not an integer: 107', async () => {
  const n = await startNode({ client: { expired_sub_close_delay: '100ms' }, channel: { namespaces: [{ name: 'srv' }] } });
  try {
    const c = client(n, { token: await sign({ sub: 'carol' }) });
    const subscribed = once<{ channel: string }>(c, 'subscribed');
    c.connect();
    await once(c, 'connected');
    const gone = once<{ code: number; reason: string }>(c, 'connecting', 5000);
    const expireAt = Math.ceil(Date.now() / 1000) + 1;
    await n.api.subscribe('carol', 'srv:brief', { expire_at: expireAt });
    assert.equal((await subscribed).channel, 'srv:brief');
    const ctx = await gone;
    assert.deepEqual([ctx.code, ctx.reason], [3006, 'subscription expired']);
    assert.ok(Date.now() >= expireAt * 1000 + 100 - 20, 'not before its expiry and grace');
    await c.ready(5000); // reconnected (the API subscription is not made again)
    const past = once<{ code: number }>(c, 'connecting', 5000);
    await n.api.subscribe('carol', 'srv:past', { expire_at: Math.floor(Date.now() / 1000) - 10 });
    assert.equal((await past).code, 3006);
    c.disconnect();
    for (const bad of [1.5, 'soon', {}]) {
      await assert.rejects(n.api.call('subscribe', { user: 'carol', channel: 'srv:x', expire_at: bad }), (e: any) => e.apiCode === 107, String(bad));
    }
  } finally {
    await n.close();
  }
});

test('API subscribe with expire_at in a namespace with the sub_refresh proxy: the server asks the proxy at the expiry, and the subscription lives on', async () => {
  const calls: BackendRequest[] = [];
  const backend = await startBackend(() => ({ result: { expire_at: Math.floor(Date.now() / 1000) + 3600 } }), calls);
  const n = await startNode({
    channel: { proxy: { sub_refresh: { endpoint: `${backend.url}/sub_refresh` } }, namespaces: [{ name: 'srv', sub_refresh_proxy_enabled: true }] },
  });
  try {
    const c = client(n, { token: await sign({ sub: 'dan' }) });
    const got: unknown[] = [];
    c.on('publication', (ctx) => got.push(ctx.data));
    const subscribed = once<{ channel: string }>(c, 'subscribed');
    c.connect();
    await once(c, 'connected');
    const events = record(c, 'connecting');
    await n.api.subscribe('dan', 'srv:refreshed', { expire_at: Math.ceil(Date.now() / 1000) + 1 });
    await subscribed;
    await until(() => calls.length === 1, 5000, 'the sub_refresh proxy call');
    assert.deepEqual([calls[0]!.body.user, calls[0]!.body.channel], ['dan', 'srv:refreshed']);
    await n.api.publish('srv:refreshed', { still: 'here' });
    await until(() => got.length === 1, 3000, 'a publication after the refresh');
    assert.deepEqual(events, [], 'not disconnected');
    c.disconnect();
  } finally {
    await n.close();
    backend.close();
  }
});
