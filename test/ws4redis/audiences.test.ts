// Every flag and audience against a real Redis: Python publishing as ws4redis' RedisPublisher does
// reaches the right sockets and only them, identities come from signed tokens (query or cookie), and
// browser publishing writes what ws4redis writes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { sign, type TestNode } from '../helpers/herald.js';
import { RedisProcess } from '../helpers/redis.js';
import { pythonPublisher, sleep, startWs4Redis, W4RClient, waitSubscribed, wsUrl } from './helpers.js';

const SUBSCRIBE_ALL = 'subscribe-broadcast&subscribe-user&subscribe-group&subscribe-session';
const PUBLISH_ALL = 'publish-broadcast&publish-user&publish-group&publish-session';
const ALL_FLAGS = [
  'subscribe-broadcast',
  'subscribe-user',
  'subscribe-group',
  'subscribe-session',
  'publish-broadcast',
  'publish-user',
  'publish-group',
  'publish-session',
] as const;

let redis: RedisProcess;
let client: Redis;
const opened: W4RClient[] = [];

before(async () => {
  redis = await RedisProcess.start();
  client = redis.client();
});

after(async () => {
  for (const c of opened) c.ws.terminate();
  client.disconnect();
  await redis.stop();
});

async function open(url: string, opts: Parameters<typeof W4RClient.open>[1] = {}): Promise<W4RClient> {
  const c = await W4RClient.open(url, opts);
  opened.push(c);
  return c;
}

const john = () => sign({ sub: 'john', groups: ['chatters'], session: 's-john' });
const mary = () => sign({ sub: 'mary', groups: ['admins', 'staff'], session: 's-mary' });

test('Python RedisPublisher → exactly the subscribed sockets, for every audience (prefix P)', async () => {
  const node: TestNode = await startWs4Redis({ prefix: 'P', allowed_channels: [...ALL_FLAGS] }, { engine: { type: 'redis', redis: { url: redis.url } } });
  try {
    const anon = await open(wsUrl(node, 'foo', SUBSCRIBE_ALL));
    const j = await open(wsUrl(node, 'foo', `${SUBSCRIBE_ALL}&token=${await john()}`));
    // Same user, user channel only, token in a cookie.
    const jUser = await open(wsUrl(node, 'foo', 'SUBSCRIBE-USER'), { headers: { Cookie: `sessionid=x; herald_token=${await john()}` } });
    const m = await open(wsUrl(node, 'foo', `${SUBSCRIBE_ALL}&token=${await mary()}`));
    const other = await open(wsUrl(node, 'other', `${SUBSCRIBE_ALL}&token=${await john()}`));
    const expected = [
      'P:broadcast:foo',
      'P:group:chatters:foo',
      'P:user:john:foo',
      'P:session:s-john:foo',
      'P:group:admins:foo',
      'P:group:staff:foo',
      'P:user:mary:foo',
      'P:session:s-mary:foo',
      'P:broadcast:other',
      'P:group:chatters:other',
      'P:user:john:other',
      'P:session:s-john:other',
    ];
    await waitSubscribed(client, expected);
    // Exactly these names: the anonymous socket asking for subscribe-user has no `P:user::foo`.
    assert.deepEqual(((await client.pubsub('CHANNELS', 'P:*')) as string[]).sort(), [...expected].sort());

    await pythonPublisher(
      redis.port,
      [
        { op: 'publish', facility: 'foo', broadcast: true, message: 'b1' },
        { op: 'publish', facility: 'foo', users: ['john'], message: 'u1' },
        { op: 'publish', facility: 'foo', groups: ['chatters'], message: 'g1' },
        { op: 'publish', facility: 'foo', sessions: ['s-mary'], message: 'sess1' },
        { op: 'publish', facility: 'foo', users: ['mary', 'john'], message: 'u2' },
        { op: 'publish', facility: 'foo', groups: ['$SELF'], request: { user: 'mary', groups: ['admins', 'staff'] }, message: 'g2' },
        { op: 'publish', facility: 'nobody', broadcast: true, message: 'x' },
      ],
      { prefix: 'P' },
    );
    const want = new Map<W4RClient, string[]>([
      [anon, ['b1']],
      [j, ['b1', 'u1', 'g1', 'u2']],
      [jUser, ['u1', 'u2']],
      [m, ['b1', 'sess1', 'u2', 'g2', 'g2']],
      [other, []],
    ]);
    for (const [c, texts] of want) await c.waitCount(texts.length);
    await sleep(150);
    for (const [c, texts] of want) assert.deepEqual(c.texts, texts);
    assert.ok([...want.keys()].every((c) => c.frames.every((f) => !f.binary)));

    // Persisted (SETEX) messages come first on connect, in ws4redis' order: broadcast, groups, user, session.
    const again = await open(wsUrl(node, 'foo', `${SUBSCRIBE_ALL}&token=${await john()}`));
    await again.waitCount(3);
    await sleep(100);
    assert.deepEqual(again.texts, ['b1', 'g1', 'u2']);
    assert.ok((await client.ttl('P:broadcast:foo')) > 3500);
  } finally {
    await node.close();
  }
});

test('browser publishing on every audience: PUBLISH + SET with the expiry, read back by fetch_message (no prefix)', async () => {
  await client.flushall();
  const node = await startWs4Redis({ allowed_channels: [...ALL_FLAGS], expire: 120 }, { engine: { type: 'redis', redis: { url: redis.url } } });
  try {
    const watcher = await open(wsUrl(node, 'chat', `${SUBSCRIBE_ALL}&token=${await john()}`));
    const m = await open(wsUrl(node, 'chat', `${SUBSCRIBE_ALL}&token=${await mary()}`));
    const publisher = await open(wsUrl(node, 'chat', `${PUBLISH_ALL}&token=${await john()}`));
    const anonPublisher = await open(wsUrl(node, 'chat', PUBLISH_ALL));
    await waitSubscribed(client, ['broadcast:chat', 'group:chatters:chat', 'user:john:chat', 'session:s-john:chat', 'user:mary:chat']);

    await publisher.send('hi');
    // One message per channel of the publisher: broadcast, group, user, session.
    await watcher.waitCount(4);
    await m.waitCount(1);
    await anonPublisher.send('from anonymous');
    await watcher.waitCount(5);
    await m.waitCount(2);
    await sleep(100);
    assert.deepEqual(watcher.texts, ['hi', 'hi', 'hi', 'hi', 'from anonymous']);
    assert.deepEqual(m.texts, ['hi', 'from anonymous']);
    assert.deepEqual(publisher.texts, []);

    for (const key of ['group:chatters:chat', 'user:john:chat', 'session:s-john:chat']) {
      assert.equal(await client.get(key), 'hi', key);
      const ttl = await client.pttl(key);
      assert.ok(ttl > 115_000 && ttl <= 120_000, `${key} ttl ${ttl}`);
    }
    assert.equal(await client.get('broadcast:chat'), 'from anonymous');
    // The anonymous publisher had no user, group or session channel: nothing like `user::chat`.
    assert.deepEqual((await client.keys('*::*')).sort(), []);

    const fetched = await pythonPublisher(redis.port, [
      { op: 'fetch', facility: 'chat', request: { user: 'john', groups: ['chatters'], session: 's-john' } },
      { op: 'fetch', facility: 'chat', audience: 'broadcast', request: { user: 'john' } },
      { op: 'fetch', facility: 'chat', audience: 'user', request: { user: 'mary' } },
    ]);
    assert.deepEqual(fetched, [Buffer.from('hi').toString('hex'), Buffer.from('from anonymous').toString('hex'), null]);
  } finally {
    await node.close();
  }
});
