// Centrifugo's client.insecure development mode: anonymous connects, and every client command the
// namespaces' options would refuse allowed (never a private channel without a token, never a feature
// the namespace does not keep); off by default, and said at start. Also: a client that may read a
// channel's history may ask for a positioned or recoverable subscription, as in Centrifugo.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { createHerald, loadConfig, type Herald } from '../../src/index.js';
import { sign, startNode, testConfig } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';
import { startBackend, type BackendRequest } from '../helpers/backend.js';

const NAMESPACES = [
  { name: 'closed' },
  { name: 'kept', history_size: 10, history_ttl: '60s', presence: true },
  { name: 'user', allow_user_limited_channels: true },
];

let herald: Herald;
let wsUrl = '';
const logs: Array<Record<string, unknown>> = [];

before(async () => {
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  herald = createHerald({ config: loadConfig({ values: testConfig({ client: { insecure: true }, channel: { namespaces: NAMESPACES } }) }), logger });
  await herald.start();
  wsUrl = `ws://127.0.0.1:${herald.port}/connection/websocket`;
});
after(() => herald.close());

test('client.insecure: said at start; an anonymous client connects and may subscribe, publish, read history and presence where no option allows it', async () => {
  assert.ok(logs.some((l) => l.level === 40 && String(l.msg).startsWith('INSECURE client mode')));
  const c = await RawClient.open(wsUrl);
  await c.connect();
  assert.ok((await c.call('subscribe', { channel: 'closed:1' })).subscribe);
  assert.ok((await c.call('publish', { channel: 'closed:1', data: { hi: 1 } })).publish);
  assert.ok((await c.call('publish', { channel: 'kept:1', data: { n: 1 } })).publish, 'without subscribing');
  const history = await c.call('history', { channel: 'kept:1', limit: 10 });
  assert.deepEqual(history.history.publications.map((p: { data: unknown }) => p.data), [{ n: 1 }]);
  assert.ok((await c.call('presence', { channel: 'kept:1' })).presence);
  assert.ok((await c.call('presence_stats', { channel: 'kept:1' })).presence_stats);
  // Another user's channel too, as in Centrifugo.
  assert.ok((await c.call('subscribe', { channel: 'user:#alice' })).subscribe);
  // A client's positioned, recoverable subscription where history is kept.
  const sub = await c.call('subscribe', { channel: 'kept:2', positioned: true, recoverable: true });
  assert.deepEqual([sub.subscribe.positioned, sub.subscribe.recoverable], [true, true]);
  c.close();
});

test('client.insecure still refuses a private channel without a token, history or presence a namespace does not keep, and unknown namespaces', async () => {
  const c = await RawClient.open(wsUrl);
  await c.connect();
  assert.equal((await c.call('subscribe', { channel: '$closed:1' })).error.code, 103);
  assert.equal((await c.call('history', { channel: 'closed:1' })).error.code, 108);
  assert.equal((await c.call('presence', { channel: 'closed:1' })).error.code, 108);
  assert.equal((await c.call('subscribe', { channel: 'nowhere:1' })).error.code, 102);
  c.close();
});

test('client.insecure: a connection token is still verified, and its expiry does not apply', async () => {
  const c = await RawClient.open(wsUrl);
  const reply = await c.connect({ token: await sign({ sub: 'bob' }, { expIn: 60 }) });
  assert.equal(reply.expires, undefined);
  c.close();
  const bad = await RawClient.open(wsUrl);
  bad.send({ id: 1, connect: { token: 'not.a.token' } });
  assert.equal((await bad.waitClose()).code, 3500);
});

test('off by default: the same namespaces refuse an anonymous connect (3501) and, with a token, the subscribe (103)', async () => {
  const n = await startNode({ channel: { namespaces: NAMESPACES } });
  try {
    const anon = await RawClient.open(n.wsUrl);
    anon.send({ id: 1, connect: {} });
    assert.equal((await anon.waitClose()).code, 3501);
    const c = await RawClient.open(n.wsUrl);
    await c.connect({ token: await sign({ sub: 'bob' }) });
    assert.equal((await c.call('subscribe', { channel: 'closed:1' })).error.code, 103);
    assert.equal((await c.call('publish', { channel: 'kept:1', data: 1 })).error.code, 103);
    c.close();
  } finally {
    await n.close();
  }
});

test('a client that may read history may ask for a positioned, recoverable subscription (as in Centrifugo), without allow_positioning / allow_recovery', async () => {
  const n = await startNode({
    channel: {
      namespaces: [
        { name: 'readable', history_size: 10, history_ttl: '60s', allow_subscribe_for_client: true, allow_history_for_subscriber: true },
        { name: 'unreadable', history_size: 10, history_ttl: '60s', allow_subscribe_for_client: true },
      ],
    },
  });
  try {
    const c = await RawClient.open(n.wsUrl);
    await c.connect({ token: await sign({ sub: 'bob' }) });
    const yes = await c.call('subscribe', { channel: 'readable:1', positioned: true, recoverable: true });
    assert.deepEqual([yes.subscribe.positioned, yes.subscribe.recoverable], [true, true]);
    const no = await c.call('subscribe', { channel: 'unreadable:1', positioned: true, recoverable: true });
    assert.deepEqual([no.subscribe.positioned, no.subscribe.recoverable], [undefined, undefined]);
    c.close();
  } finally {
    await n.close();
  }
});

test('client.insecure with the proxies: a subscribe or publish proxy that refuses still wins; other users\' # channels, which no proxy decides, are allowed; a proxy-decided subscription is not positioned on request', async () => {
  const seen: BackendRequest[] = [];
  const backend = await startBackend((s) => (s.path === '/subscribe' && s.body.channel === 'proxied:yes' ? { result: {} } : { error: { code: 403, message: 'no' } }), seen);
  const logger = pino({ level: 'silent' });
  const node = createHerald({
    config: loadConfig({
      values: testConfig({
        client: { insecure: true },
        channel: {
          proxy: { subscribe: { endpoint: `${backend.url}/subscribe` }, publish: { endpoint: `${backend.url}/publish` } },
          namespaces: [{ name: 'proxied', subscribe_proxy_enabled: true, publish_proxy_enabled: true, allow_user_limited_channels: true, history_size: 10, history_ttl: '60s' }],
        },
      }),
    }),
    logger,
  });
  await node.start();
  try {
    const c = await RawClient.open(`ws://127.0.0.1:${node.port}/connection/websocket`);
    await c.connect();
    assert.equal((await c.call('subscribe', { channel: 'proxied:no' })).error.code, 403);
    const yes = await c.call('subscribe', { channel: 'proxied:yes', positioned: true, recoverable: true });
    assert.deepEqual([yes.subscribe.positioned, yes.subscribe.recoverable], [undefined, undefined]);
    assert.equal((await c.call('publish', { channel: 'proxied:yes', data: 1 })).error.code, 403);
    const before = seen.length;
    assert.ok((await c.call('subscribe', { channel: 'proxied:#alice' })).subscribe);
    assert.equal(seen.length, before, 'not asked');
    c.close();
  } finally {
    await node.close();
    backend.close();
  }
});
