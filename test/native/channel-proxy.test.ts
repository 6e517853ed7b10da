// The subscribe and publish proxies (Centrifugo's channel.proxy) against a real backend (a Node HTTP
// server in the test), in the namespaces that enable them: the backend decides who subscribes and
// publishes, with its info, data, option overrides and expiry, or its own error or disconnect; it may
// publish other data in the client's place or keep it out of history; a failing backend is a
// temporary error; tokens, private and user-limited channels are decided without it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startBackend, type Backend, type BackendRequest } from '../helpers/backend.js';
import { loadConfig } from '../../src/index.js';
import { client, collect, once, openNamespace, sign, startNode, until, userToken, withHeaders, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep, type Msg } from '../helpers/raw.js';

type Seen = BackendRequest;

/** The backend's answer to a request: an object, [status, text], or a promise of either. */
let reply: (seen: Seen) => unknown = () => ({ result: {} });
const seen: Seen[] = [];
let backend: Backend;
let node: TestNode;

before(async () => {
  backend = await startBackend((s) => reply(s), seen);
  const url = backend.url;
  node = await startNode({
    client: { allow_anonymous_connect_without_token: true },
    proxies: [
      { name: 'rooms', endpoint: `${url}/rooms/subscribe`, http_headers: ['X-Named'] },
      { name: 'rooms-publish', endpoint: `${url}/rooms/publish` },
    ],
    channel: {
      proxy: {
        subscribe: { endpoint: `${url}/subscribe`, timeout: '1s', http_headers: ['Cookie'], emulated_headers: ['X-Token'] },
        publish: { endpoint: `${url}/publish`, http_headers: ['Cookie'] },
        sub_refresh: { endpoint: `${url}/sub_refresh`, timeout: '2s' },
      },
      namespaces: [
        // No allow_* option: the proxies decide.
        { name: 'room', subscribe_proxy_enabled: true, publish_proxy_enabled: true, history_size: 10, history_ttl: '60s', allow_positioning: true, allow_user_limited_channels: true, allow_history_for_subscriber: true },
        // allow_subscribe_for_client does not open user-limited channels to users they do not list.
        { name: 'dm', subscribe_proxy_enabled: true, allow_user_limited_channels: true, allow_subscribe_for_client: true },
        // Named proxies (Centrifugo's `proxies`), picked per namespace.
        { name: 'named', subscribe_proxy_enabled: true, subscribe_proxy_name: 'rooms', publish_proxy_enabled: true, publish_proxy_name: 'rooms-publish' },
        openNamespace('plain'),
        // Subscriptions the subscribe proxy makes expiring are refreshed by the server.
        { name: 'live', subscribe_proxy_enabled: true, sub_refresh_proxy_enabled: true, allow_publish_for_subscriber: true, history_size: 10, history_ttl: '60s' },
      ],
    },
  });
});
after(async () => {
  await node.close();
  backend.close();
});

test('subscribe proxy: the backend is asked with the client, user, channel, data and headers (the connect command\'s too, with a token), and its info, data and override apply', async () => {
  seen.length = 0;
  const expireAt = Math.floor(Date.now() / 1000) + 3600;
  reply = (s) =>
    s.headers.cookie === 'session=abc'
      ? { result: { info: { role: 'admin' }, data: { welcome: 'room 1' }, override: { force_positioning: { value: true } }, expire_at: expireAt } }
      : { error: { code: 403, message: 'not yours' } };
  const c = client(node, { token: await userToken('alice'), websocket: withHeaders({ 'X-Other': 'not passed on' }), headers: { Cookie: 'session=abc' } });
  const sub = c.newSubscription('room:1', { data: { want: 'in' } });
  const subscribed = once<any>(sub, 'subscribed');
  sub.subscribe();
  c.connect();
  const ctx = (await subscribed) as { data: unknown; positioned: boolean };
  assert.deepEqual(ctx.data, { welcome: 'room 1' });
  assert.equal(ctx.positioned, true, 'the override forced positioning');

  const asked = seen.filter((s) => s.path === '/subscribe');
  assert.equal(asked.length, 1);
  const body = asked[0]!.body;
  assert.equal(body.user, 'alice');
  assert.equal(body.channel, 'room:1');
  assert.deepEqual(body.data, { want: 'in' });
  assert.equal(body.transport, 'websocket');
  assert.equal(body.protocol, 'json');
  assert.equal(typeof body.client, 'string');
  assert.equal(asked[0]!.headers.cookie, 'session=abc');
  assert.equal(asked[0]!.headers['x-other'], undefined);

  // The info the backend gave is the subscriber's channel info in what it publishes.
  reply = () => ({ result: {} });
  const got = collect(sub);
  await sub.publish({ text: 'hi' });
  await until(() => got.length === 1);
  const pubs = (await sub.history({ limit: 10 })).publications as Array<{ info?: { chanInfo?: unknown } }>;
  assert.deepEqual(pubs.at(-1)?.info?.chanInfo, { role: 'admin' });
  c.disconnect();
});

test("subscribe proxy: the backend's error reaches the subscription (no retry), its disconnect ends the connection", async () => {
  reply = () => ({ error: { code: 1403, message: 'not in this room' } });
  const c = client(node, { token: await userToken('bob') });
  const sub = c.newSubscription('room:2');
  const unsubscribed = once<any>(sub, 'unsubscribed');
  sub.subscribe();
  c.connect();
  assert.deepEqual(await unsubscribed, { channel: 'room:2', code: 1403, reason: 'not in this room' });
  await sleep(300);
  assert.equal(sub.state, 'unsubscribed');
  c.disconnect();

  reply = () => ({ disconnect: { code: 4501, reason: 'banned' } });
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: { token: await userToken('bob') } });
  await raw.reply(1);
  raw.send({ id: 2, subscribe: { channel: 'room:3' } });
  assert.deepEqual(await raw.waitClose(), { code: 4501, reason: 'banned' });
});

test('subscribe proxy: a failing, slow or malformed backend is error 100 (the SDK retries and subscribes once it answers); an expire_at already past is 110', async () => {
  let calls = 0;
  reply = () => (++calls === 1 ? [500, 'boom'] : calls === 2 ? sleep(2500).then(() => ({ result: {} })) : calls === 3 ? 'not an object' : { result: {} });
  const c = client(node, { token: await userToken('carol'), minReconnectDelay: 50, maxReconnectDelay: 100 });
  const sub = c.newSubscription('room:4', { minResubscribeDelay: 50, maxResubscribeDelay: 100 });
  const errors: number[] = [];
  sub.on('error', (ctx: { error: { code: number } }) => errors.push(ctx.error.code));
  const subscribed = once(sub, 'subscribed', 5000);
  sub.subscribe();
  c.connect();
  await subscribed;
  assert.deepEqual(errors, [100, 100, 100]);
  c.disconnect();

  reply = () => ({ result: { expire_at: Math.floor(Date.now() / 1000) - 10 } });
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: { token: await userToken('carol') } });
  await raw.reply(1);
  raw.send({ id: 2, subscribe: { channel: 'room:5' } });
  assert.equal((await raw.reply(2)).error.code, 110);
  raw.close();
});

test('subscribe proxy: a subscription token, a user-limited channel listing the user, and a namespace without the proxy are decided without the backend', async () => {
  seen.length = 0;
  reply = () => ({ error: { code: 403, message: 'no' } });
  const c = client(node, { token: await userToken('dave') });
  c.connect();
  const byToken = c.newSubscription('room:6', { token: await sign({ sub: 'dave', channel: 'room:6' }) });
  const limited = c.newSubscription('room:7#dave');
  const plain = c.newSubscription('plain:1');
  for (const s of [byToken, limited, plain]) s.subscribe();
  await Promise.all([byToken.ready(3000), limited.ready(3000), plain.ready(3000)]);
  assert.equal(seen.filter((s) => s.path === '/subscribe').length, 0);
  c.disconnect();

  // A user-limited channel that does not list the user is refused without asking the backend (which
  // a backend written for Centrifugo never sees), whatever else the namespace allows.
  reply = () => ({ result: {} });
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: { token: await userToken('mallory') } });
  await raw.reply(1);
  for (const [i, channel] of ['room:7#dave', 'dm:1#dave,erin'].entries()) {
    raw.send({ id: 2 + i, subscribe: { channel } });
    assert.equal((await raw.reply(2 + i)).error?.code, 103, channel);
  }
  raw.send({ id: 9, subscribe: { channel: 'dm:2#mallory' } });
  assert.deepEqual((await raw.reply(9)).subscribe, {}, 'one that lists the user');
  assert.equal(seen.filter((s) => s.path === '/subscribe').length, 0);
  raw.close();
});

test("headers: a connection request's header wins over the connect command's of the same name; emulated_headers names pass from the command", async () => {
  seen.length = 0;
  reply = () => ({ result: {} });
  const c = client(node, {
    token: await userToken('gus'),
    websocket: withHeaders({ Cookie: 'session=real' }),
    headers: { Cookie: 'session=forged', 'X-Token': 't0k', 'X-Other': 'not passed on' },
  });
  const sub = c.newSubscription('room:11');
  sub.subscribe();
  c.connect();
  await sub.ready(3000);
  const headers = seen.find((s) => s.path === '/subscribe')!.headers;
  assert.equal(headers.cookie, 'session=real');
  assert.equal(headers['x-token'], 't0k');
  assert.equal(headers['x-other'], undefined);
  c.disconnect();
});

test('a result that a Go backend could not have sent (wrong types, bad base64) is a failing backend: 100, nothing done', async () => {
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: { token: await userToken('hal') } });
  await raw.reply(1);
  let id = 2;
  for (const result of [{ expire_at: 'soon' }, { expire_at: 1.5 }, { override: { presence: true } }, { override: 'x' }, { b64info: '%%%' }, { b64data: Buffer.from('not json').toString('base64') }]) {
    reply = () => ({ result });
    raw.send({ id, subscribe: { channel: `room:bad${id}` } });
    assert.equal((await raw.reply(id)).error?.code, 100, JSON.stringify(result));
    id++;
  }
  reply = (s) => (s.path === '/subscribe' ? { result: {} } : { result: { b64data: '%%%' } });
  raw.send({ id, subscribe: { channel: 'room:pub' } });
  await raw.reply(id++);
  for (const result of [{ b64data: '%%%' }, { b64data: Buffer.from('{oops').toString('base64') }, { skip_history: 'true' }]) {
    reply = (s) => (s.path === '/subscribe' ? { result: {} } : { result });
    raw.send({ id, publish: { channel: 'room:pub', data: { original: true } } });
    assert.equal((await raw.reply(id)).error?.code, 100, JSON.stringify(result));
    id++;
  }
  // Both data and b64data: data is published, as Centrifugo reads it.
  reply = () => ({ result: { data: { from: 'data' }, b64data: Buffer.from('{"from":"b64data"}').toString('base64') } });
  raw.send({ id, publish: { channel: 'room:pub', data: { original: true } } });
  await raw.reply(id);
  await until(() => raw.messages.some((m: Msg) => m.push?.pub));
  assert.deepEqual(raw.messages.filter((m: Msg) => m.push?.pub).map((m: Msg) => m.push.pub.data), [{ from: 'data' }], 'nothing else was published');
  raw.close();
});

test('sub_refresh with a subscription token replaces the channel info', async () => {
  reply = () => ({ result: {} });
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: { token: await userToken('ivy') } });
  await raw.reply(1);
  raw.send({ id: 2, subscribe: { channel: 'room:12', token: await sign({ sub: 'ivy', channel: 'room:12', info: { v: 'first' } }) } });
  await raw.reply(2);
  raw.send({ id: 3, sub_refresh: { channel: 'room:12', token: await sign({ sub: 'ivy', channel: 'room:12', info: { v: 'refreshed' } }) } });
  await raw.reply(3);
  raw.send({ id: 4, publish: { channel: 'room:12', data: { n: 1 } } });
  await raw.reply(4);
  const history = (await node.api.call('history', { channel: 'room:12', limit: 1, reverse: true })) as any;
  assert.deepEqual(history.publications[0].info.chan_info, { v: 'refreshed' });
  raw.close();
});

test('publish proxy: the backend decides; it may publish other data in the client\'s place, or keep it out of history', async () => {
  seen.length = 0;
  reply = (s) =>
    s.path === '/subscribe'
      ? { result: {} }
      : s.body.data.text === 'spam'
        ? { error: { code: 1429, message: 'no spam' } }
        : s.body.data.text === 'ephemeral'
          ? { result: { skip_history: true } }
          : { result: { data: { text: s.body.data.text, checked: true } } };
  const c = client(node, { token: await userToken('erin'), websocket: withHeaders({ Cookie: 'session=erin' }) });
  const sub = c.newSubscription('room:8');
  const got = collect(sub);
  sub.subscribe();
  c.connect();
  await sub.ready(3000);

  await sub.publish({ text: 'hello' });
  await assert.rejects(sub.publish({ text: 'spam' }), (err: { code: number; message: string }) => err.code === 1429 && err.message === 'no spam');
  await sub.publish({ text: 'ephemeral' });
  await until(() => got.length === 2);
  assert.deepEqual(got, [{ text: 'hello', checked: true }, { text: 'ephemeral' }]);
  const history = await sub.history({ limit: 10 });
  assert.deepEqual(history.publications.map((p: { data: unknown }) => p.data), [{ text: 'hello', checked: true }]);

  const asked = seen.filter((s) => s.path === '/publish');
  assert.deepEqual(asked.map((s) => s.body.data), [{ text: 'hello' }, { text: 'spam' }, { text: 'ephemeral' }]);
  assert.equal(asked[0]!.body.user, 'erin');
  assert.equal(asked[0]!.body.channel, 'room:8');
  assert.equal(asked[0]!.headers.cookie, 'session=erin', 'the upgrade request\'s header, by the name the config lists');

  // An anonymous client is asked about too (the backend decides), and a failing backend is 100.
  reply = () => [503, 'down'];
  const anonymous = client(node);
  anonymous.connect();
  await once(anonymous, 'connected');
  await assert.rejects(anonymous.publish('room:8', { text: 'x' }), (err: { code: number }) => err.code === 100);
  assert.equal(seen.filter((s) => s.path === '/publish').at(-1)?.body.user, '');
  c.disconnect();
  anonymous.disconnect();
});

test('named proxies: a namespace picks one of `proxies` by name for its subscribes and publishes', async () => {
  seen.length = 0;
  reply = (s) => (s.path === '/rooms/publish' ? { result: { data: { via: 'rooms-publish' } } } : { result: { data: { via: s.path } } });
  const c = client(node, { token: await userToken('kim'), websocket: withHeaders({ 'X-Named': 'yes' }) });
  const sub = c.newSubscription('named:1');
  const subscribed = once<any>(sub, 'subscribed');
  const got = collect(sub);
  sub.subscribe();
  c.connect();
  assert.deepEqual(((await subscribed) as { data: unknown }).data, { via: '/rooms/subscribe' });
  assert.equal(seen.find((r) => r.path === '/rooms/subscribe')?.headers['x-named'], 'yes', 'its own http_headers');
  await sub.publish({ text: 'hi' });
  await until(() => got.length === 1);
  assert.deepEqual(got, [{ via: 'rooms-publish' }]);
  assert.deepEqual(seen.map((r) => r.path), ['/rooms/subscribe', '/rooms/publish'], 'the default channel proxies were not asked');
  c.disconnect();
});

test('config: a namespace that enables a proxy needs its endpoint; a proxy\'s timeout must be > 0 and at most 60s', () => {
  assert.throws(
    () => loadConfig({ values: { channel: { namespaces: [{ name: 'a', subscribe_proxy_enabled: true }] } } }),
    /channel\.namespaces\.0\.subscribe_proxy_enabled: needs channel\.proxy\.subscribe\.endpoint/,
  );
  assert.throws(
    () => loadConfig({ values: { channel: { without_namespace: { publish_proxy_enabled: true } } } }),
    /channel\.without_namespace\.publish_proxy_enabled: needs channel\.proxy\.publish\.endpoint/,
  );
  assert.throws(
    () => loadConfig({ values: { channel: { proxy: { publish: { endpoint: 'http://127.0.0.1:1/p', timeout: '61s' } } } } }),
    /channel\.proxy\.publish\.timeout: must be > 0 and at most 60s/,
  );
  assert.throws(
    () => loadConfig({ values: { client: { proxy: { refresh: { endpoint: 'http://127.0.0.1:1/r', timeout: 0 } } } } }),
    /client\.proxy\.refresh\.timeout: must be > 0 and at most 60s/,
  );
  assert.throws(
    () => loadConfig({ values: { channel: { namespaces: [{ name: 'a', subscribe_proxy_enabled: true, subscribe_proxy_name: 'nope' }] } } }),
    /channel\.namespaces\.0\.subscribe_proxy_name: no proxy named "nope" with an endpoint in proxies/,
  );
  for (const names of [['x1', 'x1'], ['default']]) {
    assert.throws(
      () => loadConfig({ values: { proxies: names.map((name) => ({ name, endpoint: 'http://127.0.0.1:1/p' })) } }),
      /proxies\.\d\.name: "(x1|default)" is taken/,
      names.join(','),
    );
  }
  assert.throws(() => loadConfig({ values: { proxies: [{ name: 'slow', endpoint: 'http://127.0.0.1:1/p', timeout: '2m' }] } }), /proxies\.0\.timeout: must be > 0 and at most 60s/);
  // Centrifugo v6's `enabled`: false turns a proxy off even with its endpoint set.
  assert.equal(loadConfig({ values: { client: { proxy: { connect: { enabled: false, endpoint: 'http://127.0.0.1:1/c' } } } } }).client.proxy.connect.endpoint, '');
  assert.equal(loadConfig({ values: { client: { proxy: { connect: { enabled: true, endpoint: 'http://127.0.0.1:1/c' } } } } }).client.proxy.connect.endpoint, 'http://127.0.0.1:1/c');
  const c = loadConfig({ values: { channel: { proxy: { subscribe: { endpoint: 'http://127.0.0.1:1/s' } } } } });
  assert.equal(c.channel.proxy.subscribe.timeout, 1000);
  assert.equal(c.channel.without_namespace.subscribe_proxy_enabled, false, 'off unless a namespace enables it');
});

test('sub_refresh proxy: an expiring subscription of the subscribe proxy is refreshed by the server (new expiry and info), or ended with unsubscribe 2501', async () => {
  seen.length = 0;
  const inSeconds = (n: number) => Math.floor(Date.now() / 1000) + n;
  let round = 0;
  let refreshAnswer: () => unknown = () => ({ result: { expire_at: inSeconds(2), info: { v: ++round } } });
  reply = (s) => (s.path === '/subscribe' ? { result: { expire_at: inSeconds(2), info: { v: 0 } } } : refreshAnswer());
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: { token: await userToken('fay') } });
  await raw.reply(1);
  raw.send({ id: 2, subscribe: { channel: 'live:1' } });
  const subscribed = await raw.reply(2);
  assert.deepEqual(subscribed.subscribe, {}, 'no expires nor ttl: the server refreshes');
  await until(() => seen.filter((s) => s.path === '/sub_refresh').length >= 2, 6000, 'two sub refreshes');
  const asked = seen.find((s) => s.path === '/sub_refresh')!.body;
  assert.equal(asked.channel, 'live:1');
  assert.equal(asked.user, 'fay');
  assert.equal(typeof asked.client, 'string');

  // Still subscribed, with the channel info the backend gave last.
  raw.send({ id: 3, publish: { channel: 'live:1', data: { n: 1 } } });
  assert.deepEqual(await raw.reply(3), { id: 3, publish: {} });
  const history = (await node.api.call('history', { channel: 'live:1', limit: 1, reverse: true })) as any;
  assert.deepEqual(history.publications[0].info.chan_info, { v: round });

  // The client's own sub_refresh is a protocol error for such a subscription.
  const other = await RawClient.open(node.wsUrl);
  other.send({ id: 1, connect: { token: await userToken('fay') } });
  await other.reply(1);
  other.send({ id: 2, subscribe: { channel: 'live:2' } });
  await other.reply(2);
  other.send({ id: 3, sub_refresh: { channel: 'live:2', token: await sign({ sub: 'fay', channel: 'live:2' }) } });
  assert.equal((await other.waitClose()).code, 3501);

  // A failing backend leaves it subscribed; then `expired` ends it with unsubscribe 2501.
  refreshAnswer = () => [500, 'down'];
  const failedBefore = seen.filter((s) => s.path === '/sub_refresh').length;
  await until(() => seen.filter((s) => s.path === '/sub_refresh').length > failedBefore, 4000, 'a failing sub refresh');
  await sleep(500);
  assert.equal(raw.messages.some((m: Msg) => m.push?.unsubscribe), false, 'still subscribed after the failure');
  raw.close();

  refreshAnswer = () => ({ result: { expired: true } });
  const third = await RawClient.open(node.wsUrl);
  third.send({ id: 1, connect: { token: await userToken('fay') } });
  await third.reply(1);
  third.send({ id: 2, subscribe: { channel: 'live:3' } });
  await third.reply(2);
  await until(() => third.messages.some((m: Msg) => m.push?.unsubscribe), 4000, 'the unsubscribe push');
  const push = third.messages.find((m: Msg) => m.push?.unsubscribe)!.push;
  assert.equal(push.channel, 'live:3');
  assert.equal(push.unsubscribe.code, 2501);
  assert.equal(third.closeInfo, undefined, 'the connection stays');
  third.close();

  // A subscription made with an expiring token in such a namespace is refreshed by the server too.
  seen.length = 0;
  refreshAnswer = () => ({ result: { expire_at: inSeconds(3600) } });
  const fourth = await RawClient.open(node.wsUrl);
  fourth.send({ id: 1, connect: { token: await userToken('fay') } });
  await fourth.reply(1);
  fourth.send({ id: 2, subscribe: { channel: 'live:4', token: await sign({ sub: 'fay', channel: 'live:4' }, { expIn: 2 }) } });
  assert.deepEqual((await fourth.reply(2)).subscribe, {}, 'no expires nor ttl');
  await until(() => seen.some((s) => s.path === '/sub_refresh' && s.body.channel === 'live:4'), 4000, 'the token subscription refreshed by the backend');
  assert.equal(seen.filter((s) => s.path === '/subscribe').length, 0, 'the token decided the subscribe');
  fourth.close();

  // An answer without expire_at keeps the subscription, without expiry (as centrifuge does).
  seen.length = 0;
  refreshAnswer = () => ({ result: {} });
  reply = (s) => (s.path === '/subscribe' ? { result: { expire_at: inSeconds(2) } } : refreshAnswer());
  const fifth = await RawClient.open(node.wsUrl);
  fifth.send({ id: 1, connect: { token: await userToken('fay') } });
  await fifth.reply(1);
  fifth.send({ id: 2, subscribe: { channel: 'live:5' } });
  await fifth.reply(2);
  await until(() => seen.some((s) => s.path === '/sub_refresh'), 4000, 'the sub refresh');
  await sleep(300);
  await node.api.publish('live:5', { still: 'here' });
  await until(() => fifth.messages.some((m: Msg) => m.push?.pub), 3000, 'the publication');
  assert.equal(fifth.messages.some((m: Msg) => m.push?.unsubscribe), false);
  fifth.close();
});
