// A frame of several subscribes on the Redis engine: their channels are asked of Redis together (one
// SUBSCRIBE, counted by Redis itself in INFO commandstats) instead of one round trip per command,
// while each command is still answered in turn, refused ones with their own error; channels warmed
// for commands that were then refused are not left subscribed in Redis.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openNamespace, until } from '../helpers/herald.js';
import { RawClient, type Msg } from '../helpers/raw.js';
import { useRedisNode } from '../helpers/redis.js';

const t = useRedisNode({
  client: { allow_anonymous_connect_without_token: true, channel_limit: 8 },
  channel: {
    namespaces: [openNamespace('open'), { name: 'closed', allow_subscribe_for_client: true }],
  },
});

/** How many SUBSCRIBE commands Redis has run so far. */
async function subscribeCalls(): Promise<number> {
  const stats = await t.client.info('commandstats');
  return Number(/cmdstat_subscribe:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/** The Redis channels subscribed to now whose name holds `part`. */
async function redisChannels(part: string): Promise<string[]> {
  return ((await t.client.call('PUBSUB', 'CHANNELS', '*')) as string[]).filter((name) => name.includes(part));
}

/** Replies by command id. */
function replies(c: RawClient): Map<number, Msg> {
  return new Map(c.messages.filter((m) => typeof m.id === 'number').map((m) => [m.id as number, m]));
}

for (const sameFrame of [false, true]) {
  test(`8 subscribes in one frame${sameFrame ? ' with the connect' : ', after the connect'}: one SUBSCRIBE to Redis, each answered in order, each channel delivering`, async () => {
    const c = await RawClient.open(t.node.wsUrl);
    const channels = Array.from({ length: 8 }, (_, i) => `open:f${sameFrame ? 's' : 'a'}${i}`);
    const subscribes = channels.map((channel, i) => JSON.stringify({ id: i + 2, subscribe: { channel } }));
    const connect = JSON.stringify({ id: 1, connect: {} });
    if (!sameFrame) {
      c.ws.send(connect);
      await until(() => replies(c).has(1), 5000, 'connect reply');
    }
    const before = await subscribeCalls();
    c.ws.send((sameFrame ? [connect, ...subscribes] : subscribes).join('\n'));
    await until(() => replies(c).size === 9, 5000, 'subscribe replies');
    // One SUBSCRIBE for the 8 channels (the build before sent one per command: 8).
    assert.ok((await subscribeCalls()) - before <= 2, `${(await subscribeCalls()) - before} SUBSCRIBEs`);
    const order = c.messages.filter((m) => typeof m.id === 'number').map((m) => m.id);
    assert.deepEqual(order, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const [id, reply] of replies(c)) if (id > 1) assert.ok(reply.subscribe, JSON.stringify(reply));
    for (const channel of channels) await t.node.api.publish(channel, { to: channel });
    await until(() => c.messages.filter((m) => m.push?.pub).length === 8, 5000, 'publications');
    assert.deepEqual(
      c.messages.filter((m) => m.push?.pub).map((m) => m.push.channel),
      channels,
    );
    c.ws.close();
    await until(async () => (await redisChannels(`open:f${sameFrame ? 's' : 'a'}`)).length === 0, 5000, 'channels left');
  });
}

test('a frame mixing allowed, refused and over-limit subscribes: each gets its own answer, and only the subscribed channels stay in Redis', async () => {
  const c = await RawClient.open(t.node.wsUrl);
  c.ws.send(JSON.stringify({ id: 1, connect: {} }));
  await until(() => replies(c).has(1), 5000, 'connect reply');
  // Of 12: one the namespace refuses anonymous clients (103), one with a tags filter its namespace
  // does not allow (107: warmed, then refused), one in no namespace (102), and one past the channel
  // limit of 8 (106).
  const frame = [
    { channel: 'open:m1' },
    { channel: 'closed:m2' },
    { channel: 'open:m3', tf: { key: 'k', cmp: 'eq', val: 'v' } },
    { channel: 'nowhere:m4' },
    { channel: 'open:m5' },
    { channel: 'open:m6' },
    { channel: 'open:m7' },
    { channel: 'open:m8' },
    { channel: 'open:m9' },
    { channel: 'open:m10' },
    { channel: 'open:m11' },
    { channel: 'open:m12' },
  ];
  const before = await subscribeCalls();
  c.ws.send(frame.map((subscribe, i) => JSON.stringify({ id: i + 2, subscribe })).join('\n'));
  await until(() => replies(c).size === frame.length + 1, 5000, 'replies');
  const codes = frame.map((_, i) => replies(c).get(i + 2)!.error?.code ?? 'ok');
  assert.deepEqual(codes, ['ok', 103, 107, 102, 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 106]);
  // The 8 warmed channels (as many as the limit left room for) in one SUBSCRIBE, m11 in one of its own.
  assert.ok((await subscribeCalls()) - before <= 3, `${(await subscribeCalls()) - before} SUBSCRIBEs`);
  // In Redis: the 8 subscribed channels, not m3 (warmed, then refused), nor the other refused ones.
  const wanted = ['m1', 'm5', 'm6', 'm7', 'm8', 'm9', 'm10', 'm11'];
  const held = async () => (await redisChannels(':m')).map((name) => /:(m\d+)/.exec(name)?.[1]).sort();
  await until(async () => (await held()).length === 8, 5000, 'the subscribed channels alone');
  assert.deepEqual(await held(), [...wanted].sort());
  c.ws.close();
});

test('Redis stalled during a frame of subscribes: each is answered error 100, and once Redis runs what it was sent and the client is gone, none of the channels stays subscribed', async () => {
  const c = await RawClient.open(t.node.wsUrl);
  await c.connect();
  t.redis.pause();
  try {
    // One SUBSCRIBE for the three, unanswered: it times out, and the second and third commands
    // subscribe again, failing at once on the silent connection. The first SUBSCRIBE still runs
    // once Redis resumes: every channel of it must be taken back, the ones asked for again too.
    c.send({ id: 2, subscribe: { channel: 'open:s1' } }, { id: 3, subscribe: { channel: 'open:s2' } }, { id: 4, subscribe: { channel: 'open:s3' } });
    const codes = [];
    for (const id of [2, 3, 4]) codes.push((await c.reply(id, 10_000)).error?.code ?? 'ok');
    assert.deepEqual(codes, [100, 100, 100]);
  } finally {
    t.redis.resume();
  }
  c.ws.close();
  await until(async () => (await redisChannels('open:s')).length === 0, 8000, 'no channel left subscribed in Redis');
  // Still none a moment later (what Redis ran on resuming has been taken back, not just not yet run).
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await redisChannels('open:s'), []);
});
