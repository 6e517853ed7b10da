// Subscription tokens: `$` channels and closed namespaces opened by a token, the `channel`, `sub`
// and `client` claims, expiry (109, getToken, sub_refresh, unsubscribe 2501), `data`, `info` and
// `override`, and a separate subscription-token key.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { client, collect, once, openNamespace, sign, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

let node: TestNode;
before(async () => {
  node = await startNode({
    client: { allow_anonymous_connect_without_token: true, expired_close_delay: '1s' },
    channel: {
      namespaces: [
        openNamespace('news'),
        { name: 'secret', allow_publish_for_subscriber: true },
        { name: 'hist', history_size: 10, history_ttl: '60s' },
      ],
    },
  });
});
after(() => node.close());

const subToken = (user: string, channel: string, claims: Record<string, unknown> = {}, expIn = 3600) =>
  sign({ sub: user, channel, ...claims }, { expIn });

async function sdk(user: string, opts = {}): Promise<Centrifuge> {
  const c = client(node, { token: await userToken(user), ...opts });
  c.connect();
  await c.ready(3000);
  return c;
}

async function raw(user: string): Promise<RawClient> {
  const r = await RawClient.open(node.wsUrl);
  await r.connect(user ? { token: await userToken(user) } : {});
  return r;
}

test('a $ channel needs a token even in an open namespace; with one the SDK subscribes and receives', async () => {
  const r = await raw('alice');
  assert.equal((await r.call('subscribe', { channel: '$news:1' })).error?.code, 103);
  assert.ok((await r.call('subscribe', { channel: '$news:1', token: await subToken('alice', '$news:1') })).subscribe);
  r.close();

  const c = await sdk('alice');
  const denied = c.newSubscription('$news:2');
  const unsubscribed = once<{ code: number }>(denied, 'unsubscribed');
  denied.subscribe();
  assert.equal((await unsubscribed).code, 103);

  const withToken = c.newSubscription('$news:3', { token: await subToken('alice', '$news:3') });
  const seen: unknown[] = [];
  const withGetToken = c.newSubscription('$news:4', {
    getToken: async (ctx) => {
      seen.push(ctx);
      return subToken('alice', '$news:4');
    },
  });
  const got3 = collect(withToken);
  const got4 = collect(withGetToken);
  withToken.subscribe();
  withGetToken.subscribe();
  await Promise.all([withToken.ready(2000), withGetToken.ready(2000)]);
  assert.deepEqual(seen, [{ channel: '$news:4' }]);
  await node.api.publish('$news:3', { n: 3 });
  await node.api.publish('$news:4', { n: 4 });
  await until(() => got3.length === 1 && got4.length === 1);
  assert.deepEqual([got3, got4], [[{ n: 3 }], [{ n: 4 }]]);
  c.disconnect();
});

test('a token opens a namespace closed to clients; an anonymous connection needs a token without sub', async () => {
  const r = await raw('alice');
  assert.equal((await r.call('subscribe', { channel: 'secret:1' })).error?.code, 103);
  assert.ok((await r.call('subscribe', { channel: 'secret:1', token: await subToken('alice', 'secret:1') })).subscribe);
  r.close();
  const anon = await raw('');
  assert.ok((await anon.call('subscribe', { channel: 'secret:2', token: await sign({ channel: 'secret:2' }, { expIn: 60 }) })).subscribe);
  anon.close();
});

test('a token for another channel, another user or another client id ends the connection with 3500', async () => {
  const cases = [
    await subToken('alice', 'secret:other'),
    await subToken('bob', 'secret:1'),
    await subToken('alice', 'secret:1', { client: '00000000-0000-0000-0000-000000000000' }),
  ];
  for (const token of cases) {
    const r = await raw('alice');
    r.send({ id: r.id(), subscribe: { channel: 'secret:1', token } });
    assert.equal((await r.waitClose()).code, 3500);
  }

  const c = client(node, { token: await userToken('alice') });
  const sub = c.newSubscription('secret:1', { token: await subToken('alice', 'secret:2') });
  const disconnected = once<{ code: number }>(c, 'disconnected');
  sub.subscribe();
  c.connect();
  assert.equal((await disconnected).code, 3500);
  await sleep(300);
  assert.equal(c.state, 'disconnected');
});

test('a forged subscription token: 103, the connection stays', async () => {
  const r = await raw('alice');
  const forged = await sign({ sub: 'alice', channel: 'secret:1' }, { secret: 'wrong', expIn: 60 });
  assert.equal((await r.call('subscribe', { channel: 'secret:1', token: forged })).error?.code, 103);
  assert.equal((await r.call('subscribe', { channel: 'secret:1', token: 'garbage' })).error?.code, 103);
  assert.ok((await r.call('subscribe', { channel: 'news:1' })).subscribe);
  r.close();
});

test('an expired subscription token: 109; centrifuge-js gets a new one from getToken and subscribes', async () => {
  const r = await raw('alice');
  const expired = await subToken('alice', 'secret:exp', {}, -10);
  assert.equal((await r.call('subscribe', { channel: 'secret:exp', token: expired })).error?.code, 109);
  assert.ok((await r.call('subscribe', { channel: 'secret:exp', token: await subToken('alice', 'secret:exp') })).subscribe);
  r.close();

  const c = await sdk('alice');
  let calls = 0;
  const sub = c.newSubscription('secret:exp', {
    token: expired,
    getToken: async () => {
      calls++;
      return subToken('alice', 'secret:exp');
    },
  });
  const errors: Array<{ error: { code: number } }> = [];
  sub.on('error', (ctx) => errors.push(ctx));
  const got = collect(sub);
  sub.subscribe();
  await sub.ready(3000);
  assert.equal(calls, 1);
  assert.equal(errors[0]?.error.code, 109);
  await node.api.publish('secret:exp', 'ok');
  await until(() => got.length === 1);
  c.disconnect();
});

test('token data reaches the subscribed event; token info is the chan_info of the publisher', async () => {
  const alice = client(node, { token: await sign({ sub: 'alice', info: { name: 'Alice' } }) });
  const sub = alice.newSubscription('secret:info', {
    token: await subToken('alice', 'secret:info', { data: { welcome: true }, info: { role: 'admin' } }),
  });
  const subscribed = once<{ data?: unknown }>(sub, 'subscribed');
  sub.subscribe();
  alice.connect();
  assert.deepEqual((await subscribed).data, { welcome: true });

  const bob = await sdk('bob');
  const bobSub = bob.newSubscription('secret:info', { token: await subToken('bob', 'secret:info') });
  const pubs: Array<{ data: unknown; info?: { user: string; client: string; connInfo?: unknown; chanInfo?: unknown } }> = [];
  bobSub.on('publication', (ctx) => pubs.push(ctx));
  bobSub.subscribe();
  await bobSub.ready(2000);
  await sub.publish({ text: 'hello' });
  await until(() => pubs.length === 1);
  assert.deepEqual(pubs[0]!.data, { text: 'hello' });
  const info = pubs[0]!.info!;
  assert.equal(info.user, 'alice');
  assert.equal(typeof info.client, 'string');
  assert.deepEqual(info.connInfo, { name: 'Alice' });
  assert.deepEqual(info.chanInfo, { role: 'admin' });
  alice.disconnect();
  bob.disconnect();
});

test('token override force_recovery makes the subscription recoverable', async () => {
  const r = await raw('alice');
  const plain = (await r.call('subscribe', { channel: 'hist:plain', token: await subToken('alice', 'hist:plain') })).subscribe;
  assert.equal('recoverable' in plain || 'positioned' in plain, false);
  const token = await subToken('alice', 'hist:rec', { override: { force_recovery: { value: true } } });
  const res = (await r.call('subscribe', { channel: 'hist:rec', token })).subscribe;
  assert.equal(res.recoverable, true);
  assert.equal(res.positioned, true);
  r.close();
});

test('token exp: expires/ttl in the result; unrefreshed the subscription ends with unsubscribe 2501', async () => {
  const r = await raw('alice');
  // 2 s: `exp` is in whole seconds, so a token of 1 s may have expired by the time it is checked.
  const res = (await r.call('subscribe', { channel: 'secret:short', token: await subToken('alice', 'secret:short', {}, 2) })).subscribe;
  assert.equal(res.expires, true);
  assert.ok(res.ttl >= 1 && res.ttl <= 2);
  const push = await r.waitFor((m) => m.push?.unsubscribe !== undefined, 5000, 'unsubscribe push');
  assert.deepEqual(push, { push: { channel: 'secret:short', unsubscribe: { code: 2501, reason: 'subscription expired' } } });
  await node.api.publish('secret:short', 'after');
  await sleep(100);
  assert.deepEqual(r.pushes('secret:short'), [], 'no publications after the unsubscribe');
  assert.equal(r.closeInfo, undefined, 'the connection stays');
  r.close();
});

test('client.expired_sub_close_delay: the grace of subscriptions, apart from the connections\' expired_close_delay', async () => {
  const quick = await startNode({
    client: { allow_anonymous_connect_without_token: true, expired_close_delay: '30s', expired_sub_close_delay: '200ms' },
    channel: { namespaces: [{ name: 'secret' }] },
  });
  try {
    const r = await RawClient.open(quick.wsUrl);
    await r.connect({ token: await userToken('alice') });
    assert.ok((await r.call('subscribe', { channel: 'secret:grace', token: await subToken('alice', 'secret:grace', {}, 2) })).subscribe);
    // Ended 2 s + 200 ms after, not 2 s + 30 s.
    const push = await r.waitFor((m) => m.push?.unsubscribe !== undefined, 5000, 'unsubscribe push');
    assert.equal(push.push.unsubscribe.code, 2501);
    assert.equal(r.closeInfo, undefined);
    r.close();
  } finally {
    await quick.close();
  }
});

test('sub_refresh: extends the subscription; not subscribed 103, empty token 107, mismatch 3500', async () => {
  const r = await raw('alice');
  assert.ok((await r.call('subscribe', { channel: 'secret:r', token: await subToken('alice', 'secret:r', {}, 2) })).subscribe);
  const refreshed = (await r.call('sub_refresh', { channel: 'secret:r', token: await subToken('alice', 'secret:r', {}, 600) })).sub_refresh;
  assert.equal(refreshed.expires, true);
  assert.ok(refreshed.ttl > 590 && refreshed.ttl <= 600);
  assert.equal((await r.call('sub_refresh', { channel: 'secret:none', token: await subToken('alice', 'secret:none') })).error?.code, 103);
  assert.equal((await r.call('sub_refresh', { channel: 'secret:r', token: '' })).error?.code, 107);
  await sleep(3200); // past the first token's expiry plus the close delay
  assert.equal(r.messages.some((m) => m.push?.unsubscribe), false, 'refreshed: no unsubscribe');
  await node.api.publish('secret:r', 'still');
  await r.waitFor((m) => m.push?.channel === 'secret:r');
  r.send({ id: r.id(), sub_refresh: { channel: 'secret:r', token: await subToken('alice', 'secret:other') } });
  assert.equal((await r.waitClose()).code, 3500);

  const r2 = await raw('alice');
  assert.ok((await r2.call('subscribe', { channel: 'secret:r', token: await subToken('alice', 'secret:r') })).subscribe);
  r2.send({ id: r2.id(), sub_refresh: { channel: 'secret:r', token: await sign({ sub: 'alice', channel: 'secret:r' }, { secret: 'x', expIn: 60 }) } });
  assert.equal((await r2.waitClose()).code, 3500);
});

test('centrifuge-js refreshes an expiring subscription token through getToken and stays subscribed', async () => {
  const c = await sdk('alice');
  let calls = 0;
  const sub = c.newSubscription('secret:sdk-refresh', {
    getToken: async () => {
      calls++;
      return subToken('alice', 'secret:sdk-refresh', {}, calls === 1 ? 1 : 600);
    },
  });
  const events: string[] = [];
  for (const e of ['subscribing', 'subscribed', 'unsubscribed']) sub.on(e as 'subscribed', () => events.push(e));
  const got = collect(sub);
  sub.subscribe();
  await sub.ready(2000);
  await until(() => calls === 2, 3000, 'getToken for sub_refresh');
  await sleep(2200);
  assert.deepEqual(events, ['subscribing', 'subscribed']);
  await node.api.publish('secret:sdk-refresh', 'alive');
  await until(() => got.length === 1);
  c.disconnect();
});

test('with subscription_token enabled, subscription tokens use their own key', async () => {
  const own = await startNode({
    client: { subscription_token: { enabled: true, hmac_secret_key: 'sub-secret-abcdef' } },
    channel: { namespaces: [{ name: 'secret' }] },
  });
  try {
    const r = await RawClient.open(own.wsUrl);
    await r.connect({ token: await userToken('alice') });
    const withConnKey = await subToken('alice', 'secret:1');
    assert.equal((await r.call('subscribe', { channel: 'secret:1', token: withConnKey })).error?.code, 103);
    const withSubKey = await sign({ sub: 'alice', channel: 'secret:1' }, { secret: 'sub-secret-abcdef', expIn: 60 });
    assert.ok((await r.call('subscribe', { channel: 'secret:1', token: withSubKey })).subscribe);
    r.close();
  } finally {
    await own.close();
  }
});

test('b64info / b64data claims (JSON with raw newlines) arrive as JSON values, never splitting a line', async () => {
  const b64 = (v: string) => Buffer.from(v).toString('base64');
  const alice = client(node, { token: await sign({ sub: 'alice', b64info: b64('{\n  "name": "Alice"\n}') }) });
  const sub = alice.newSubscription('secret:b64', {
    token: await subToken('alice', 'secret:b64', { b64data: b64('{\n"welcome": [1,\n2]}'), b64info: b64('{"role":\n"admin"}') }),
  });
  const subscribed = once<{ data?: unknown }>(sub, 'subscribed');
  sub.subscribe();
  alice.connect();
  assert.deepEqual((await subscribed).data, { welcome: [1, 2] });
  const watcher = await raw('bob');
  await watcher.call('subscribe', { channel: 'secret:b64', token: await subToken('bob', 'secret:b64') });
  await sub.publish('hi');
  const push = await watcher.waitFor((m) => m.push?.channel === 'secret:b64');
  assert.deepEqual(push.push.pub.info.conn_info, { name: 'Alice' });
  assert.deepEqual(push.push.pub.info.chan_info, { role: 'admin' });
  for (const frame of watcher.frames) for (const line of frame.split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
  watcher.close();
  alice.disconnect();
});
