// The Redis engine gathers the commands it sends together into one write (engine/redis-clients.ts,
// TickWrites): a broadcast to many channels with history reaches Redis in a few reads (counted by
// Redis itself, INFO stats), not one per channel, and every publication still gets its own offset,
// in order, and reaches its subscribers; a client leaving many presence channels is taken out of
// each and its leaves are published.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openNamespace, until } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';
import { useRedisNode } from '../helpers/redis.js';

const t = useRedisNode({
  client: { allow_anonymous_connect_without_token: true, channel_limit: 1000 },
  channel: {
    namespaces: [
      openNamespace('feed', { history_size: 10, history_ttl: '5m', force_recovery: true }),
      openNamespace('room', { presence: true, join_leave: true, force_push_join_leave: true }),
    ],
  },
});

/** How many times Redis has read from its clients' sockets so far. */
async function redisReads(): Promise<number> {
  const stats = await t.client.info('stats');
  const m = /total_reads_processed:(\d+)/.exec(stats);
  assert.ok(m, 'INFO stats has total_reads_processed');
  return Number(m[1]);
}

/** Subscribes one raw client to `channels` (one frame), resolving once every reply came. */
async function subscribed(channels: string[]): Promise<RawClient> {
  const c = await RawClient.open(t.node.wsUrl);
  c.ws.send([{ id: 1, connect: {} }, ...channels.map((channel, i) => ({ id: i + 2, subscribe: { channel } }))].map((m) => JSON.stringify(m)).join('\n'));
  await until(() => c.messages.filter((m) => m.id !== undefined).length === channels.length + 1, 10_000, 'subscribe replies');
  assert.ok(c.messages.every((m) => m.error === undefined), JSON.stringify(c.messages.find((m) => m.error)));
  return c;
}

test('a broadcast to 100 channels with history reaches Redis in a few reads, each channel published once, in order, with its offset', async () => {
  const channels = Array.from({ length: 100 }, (_, i) => `feed:b${i}`);
  const watcher = await subscribed(channels.slice(0, 10));
  // Every channel has one publication already, so the broadcast's are each channel's second.
  await t.node.api.broadcast(channels, { n: 1 });
  const before = await redisReads();
  const reply = (await t.node.api.broadcast(channels, { n: 2 })) as { responses: Array<{ result?: { offset: number }; error?: unknown }> };
  const reads = (await redisReads()) - before;
  assert.equal(reply.responses.length, 100);
  assert.deepEqual(
    reply.responses.map((x) => x.result?.offset),
    channels.map(() => 2),
    'each channel published once more, at offset 2',
  );
  // One read for the broadcast's 100 FCALLs, one for this INFO, and a few for Herald's own background
  // commands at most (3 in all, run after run). Written one by one, they took Redis 11 to 101 reads.
  assert.ok(reads <= 6, `Redis read ${reads} times for the broadcast`);
  // Each of the watched channels delivers both publications, in order, once.
  await until(() => watcher.messages.filter((m) => m.push?.pub).length === 20, 5000, 'publications');
  for (const channel of channels.slice(0, 10)) {
    const got = watcher.messages.filter((m) => m.push?.channel === channel && m.push.pub).map((m) => [m.push.pub.data.n, m.push.pub.offset]);
    assert.deepEqual(got, [
      [1, 1],
      [2, 2],
    ]);
  }
  watcher.ws.close();
});

test('a client leaving 300 presence channels at once: its presence goes from each, and a watcher of each gets its leave', async () => {
  const channels = Array.from({ length: 300 }, (_, i) => `room:r${i}`);
  const watcher = await subscribed(channels);
  const leaver = await subscribed(channels);
  const leaverId = leaver.messages.find((m) => m.id === 1)!.connect.client as string;
  assert.ok(((await t.node.api.presence(channels[299]!)) as { presence: Record<string, unknown> }).presence[leaverId], 'the leaver is present before it goes');
  leaver.ws.terminate();
  await until(() => watcher.messages.filter((m) => m.push?.leave).length === 300, 10_000, 'leaves');
  const left = new Set(watcher.messages.filter((m) => m.push?.leave?.info?.client === leaverId).map((m) => m.push.channel));
  assert.equal(left.size, 300);
  for (const channel of [channels[0]!, channels[150]!, channels[299]!]) {
    const presence = ((await t.node.api.presence(channel)) as { presence: Record<string, unknown> }).presence;
    assert.deepEqual(Object.keys(presence).sort(), [watcher.messages.find((m) => m.id === 1)!.connect.client].sort(), channel);
  }
  watcher.ws.close();
});
