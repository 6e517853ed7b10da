// The periodic position check and the max time lag (client.channel_position_check_delay,
// client.channel_position_max_time_lag) on the Redis engine, whose pub/sub may lose a publication
// without losing the connection. A lost publication is made the way any Redis client can: FCALL
// herald_publish (docs/operations.md) with a pub/sub channel no node listens on, so it is in history
// and reaches nobody; an old one with its time argument.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import type { Subscription } from 'centrifuge';
import { client, openNamespace, record, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RedisProcess } from '../helpers/redis.js';

let redis: RedisProcess;
let r: Redis;

before(async () => {
  redis = await RedisProcess.start();
  r = redis.client();
});

after(async () => {
  r.disconnect();
  await redis.stop();
});

const feed = openNamespace('feed', { history_size: 100, history_ttl: '5m', force_recovery: true });

async function node(client: Record<string, unknown>): Promise<TestNode> {
  return startNode({ engine: { type: 'redis', redis: { url: redis.url } }, client, channel: { namespaces: [feed] }, metrics: { enabled: true } });
}

/** The node's herald_insufficient_state_total, by reason. */
async function resyncs(n: TestNode): Promise<Record<string, number>> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^herald_insufficient_state_total\{reason="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** Publishes into a channel's history as Herald's function does; `pubsub` and `time` as given. */
async function publishRaw(channel: string, data: unknown, opts: { pubsub?: string; time?: number } = {}): Promise<number> {
  const k = `herald{${channel}}`;
  const reply = (await r.call('FCALL', 'herald_publish', 2, `${k}.h`, `${k}.m`, opts.pubsub ?? `${k}.p`, JSON.stringify(data), 100, 300000, 0, '', '', opts.time === undefined ? '' : String(opts.time))) as [number, string, number];
  return Number(reply[0]);
}

/** A subscription of a connected client, with what it got and the events it went through once subscribed. */
async function subscribed(n: TestNode, channel: string): Promise<{ sub: Subscription; got: unknown[]; events: Array<[string, any]> }> {
  const c = client(n, { token: await userToken('u') });
  const sub = c.newSubscription(channel);
  const got: unknown[] = [];
  sub.on('publication', (ctx) => got.push(ctx.data));
  const events = record(sub, 'subscribed', 'subscribing', 'unsubscribed');
  sub.subscribe();
  c.connect();
  await sub.ready(5000);
  events.length = 0; // from here on: what the checks make it go through
  return { sub, got, events };
}

test('a lost last publication (in history, never delivered) reaches the client through the position check: it resubscribes and recovers it once, in order', async () => {
  const n = await node({ channel_position_check_delay: '1s' });
  try {
    const { got, events } = await subscribed(n, 'feed:lost');
    await n.api.publish('feed:lost', { i: 1 });
    await until(() => got.length === 1, 5000, 'the first publication');
    const lostOffset = await publishRaw('feed:lost', { i: 2 }, { pubsub: 'nobody-listens-here' });
    assert.equal(lostOffset, 2);
    // Nothing comes live; the check (every 1 s, then a grace of 1 s) finds the subscription behind.
    await until(() => got.length === 2, 8000, 'the lost publication, recovered');
    assert.deepEqual(got, [{ i: 1 }, { i: 2 }]);
    const kinds = events.map(([e]) => e);
    assert.deepEqual(kinds, ['subscribing', 'subscribed']);
    const [, subscribing] = events[0]!;
    assert.equal(subscribing.code, 2500, 'insufficient state');
    const [, again] = events[1]!;
    assert.equal(again.wasRecovering, true);
    assert.equal(again.recovered, true);
    // And it carries on live.
    await n.api.publish('feed:lost', { i: 3 });
    await until(() => got.length === 3, 5000, 'the next publication');
    assert.deepEqual(got[2], { i: 3 });
    assert.deepEqual(await resyncs(n), { gap: 0, position_check: 1, time_lag: 0, engine: 0 }, 'operators see it');
  } finally {
    await n.close();
  }
});

test('subscriptions kept up to date are left alone by the check, publications in flight included', async () => {
  const n = await node({ channel_position_check_delay: '300ms' });
  try {
    const subs = await Promise.all([0, 1, 2].map(() => subscribed(n, 'feed:busy')));
    const idle = await subscribed(n, 'feed:idle');
    await n.api.publish('feed:idle', { once: true });
    // A publication every 5 ms for 3 s: ten checks read the top while publications are in flight.
    let sent = 0;
    const end = Date.now() + 3000;
    while (Date.now() < end) {
      await n.api.publish('feed:busy', { i: ++sent });
      await new Promise((res) => setTimeout(res, 5));
    }
    await until(() => subs.every((s) => s.got.length === sent), 5000, 'every publication');
    await new Promise((res) => setTimeout(res, 1000)); // checks after the last one, with its grace
    for (const s of [...subs, idle]) assert.deepEqual(s.events.map(([e]) => e), [], 'never told to resubscribe');
    for (const s of subs) assert.deepEqual(s.got, Array.from({ length: sent }, (_, i) => ({ i: i + 1 })));
    assert.deepEqual(idle.got, [{ once: true }]);
  } finally {
    await n.close();
  }
});

test("a stream whose position expired (a new epoch) is noticed by the check: the client resubscribes and is told recovered: false", async () => {
  const n = await node({ channel_position_check_delay: '1s' });
  try {
    const { events } = await subscribed(n, 'feed:epoch');
    await n.api.publish('feed:epoch', { i: 1 });
    await r.del('herald{feed:epoch}.m', 'herald{feed:epoch}.h');
    await until(() => events.length === 2, 8000, 'a resubscription');
    assert.deepEqual(events.map(([e]) => e), ['subscribing', 'subscribed']);
    assert.equal(events[0]![1].code, 2500);
    assert.equal(events[1]![1].recovered, false);
  } finally {
    await n.close();
  }
});

test('channel_position_max_time_lag: a publication older than the lag makes a positioned subscription resubscribe and recover it; a fresh one does not', async () => {
  const n = await node({ channel_position_max_time_lag: '5s' });
  try {
    const { got, events } = await subscribed(n, 'feed:lag');
    await n.api.publish('feed:lag', { fresh: 1 });
    await until(() => got.length === 1, 5000, 'a fresh publication');
    assert.deepEqual(events.map(([e]) => e), []);
    await publishRaw('feed:lag', { old: 2 }, { time: Date.now() - 60_000 });
    await until(() => got.length === 2 && events.length === 2, 5000, 'the old publication, recovered');
    assert.deepEqual(got, [{ fresh: 1 }, { old: 2 }]);
    assert.deepEqual(events.map(([e]) => e), ['subscribing', 'subscribed']);
    assert.equal(events[0]![1].code, 2500);
    assert.equal(events[1]![1].recovered, true);
    assert.equal((await resyncs(n)).time_lag, 1);
  } finally {
    await n.close();
  }
});

test('a node lagging behind a busy stream by more than the grace is not made to resubscribe: its subscriptions move on between the read and the check', async () => {
  const n = await node({ channel_position_check_delay: '2s' });
  try {
    const s = await subscribed(n, 'feed:lagging');
    // This node's deliveries come 1.5 s late (an overloaded node), in order; the grace is 1 s.
    const hub = (n.herald as unknown as { hub: { onPublication: (...a: unknown[]) => number } }).hub;
    const deliver = hub.onPublication.bind(hub);
    hub.onPublication = (...a: unknown[]) => (setTimeout(() => deliver(...a), 1500), 1);
    let sent = 0;
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      await n.api.publish('feed:lagging', { i: ++sent });
      await new Promise((res) => setTimeout(res, 20));
    }
    await until(() => s.got.length === sent, 8000, 'every publication, late');
    await new Promise((res) => setTimeout(res, 2000)); // and the check after them
    assert.deepEqual(s.events.map(([e]) => e), [], 'never told to resubscribe');
    assert.deepEqual(s.got, Array.from({ length: sent }, (_, i) => ({ i: i + 1 })));
  } finally {
    await n.close();
  }
});

test('a stream that went back under the same epoch (Redis restored older data) is noticed: a subscription ahead of the top resubscribes', async () => {
  const n = await node({ channel_position_check_delay: '1s' });
  try {
    const { got, events } = await subscribed(n, 'feed:back');
    for (let i = 1; i <= 3; i++) await n.api.publish('feed:back', { i });
    await until(() => got.length === 3, 5000, 'three publications');
    await r.hset('herald{feed:back}.m', 's', 1); // the top offset as an older snapshot had it
    await until(() => events.length >= 1, 8000, 'a resubscription');
    assert.equal(events[0]![0], 'subscribing');
    assert.equal(events[0]![1].code, 2500);
  } finally {
    await n.close();
  }
});

test('a server-side subscription that lost its last publication: the connection is closed with 3010, reconnects and recovers it', async () => {
  const n = await node({ channel_position_check_delay: '1s' });
  try {
    const c = client(n, { token: await userToken('srv', { channels: ['feed:srv'] }) });
    const got: unknown[] = [];
    c.on('publication', (ctx) => got.push(ctx.data));
    const events = record(c, 'connecting', 'connected');
    c.connect();
    await c.ready(5000);
    await n.api.publish('feed:srv', { i: 1 });
    await until(() => got.length === 1, 5000, 'the first publication');
    await publishRaw('feed:srv', { i: 2 }, { pubsub: 'nobody-listens-here' });
    await until(() => got.length === 2, 8000, 'the lost publication, recovered after a reconnect');
    assert.deepEqual(got, [{ i: 1 }, { i: 2 }]);
    const connecting = events.filter(([e]) => e === 'connecting').map(([, ctx]) => ctx.code);
    assert.deepEqual(connecting.slice(-1), [3010]);
  } finally {
    await n.close();
  }
});

test('without channel_position_max_time_lag (the default) an old publication is delivered as any other', async () => {
  const n = await node({});
  try {
    const { got, events } = await subscribed(n, 'feed:nolag');
    await publishRaw('feed:nolag', { old: 1 }, { time: Date.now() - 3_600_000 });
    await until(() => got.length === 1, 5000, 'the old publication');
    await new Promise((res) => setTimeout(res, 200));
    assert.deepEqual(events, []);
  } finally {
    await n.close();
  }
});

test('a lost publication with one after it is a gap: the subscription recovers at once, counted as a gap', async () => {
  const n = await node({});
  try {
    const { got, events } = await subscribed(n, 'feed:gap');
    await publishRaw('feed:gap', { i: 1 }, { pubsub: 'nobody-listens-here' });
    await n.api.publish('feed:gap', { i: 2 });
    await until(() => got.length === 2, 5000, 'both, the lost one recovered');
    assert.deepEqual(got, [{ i: 1 }, { i: 2 }]);
    assert.deepEqual(events.map(([e]) => e), ['subscribing', 'subscribed']);
    assert.deepEqual(await resyncs(n), { gap: 1, position_check: 0, time_lag: 0, engine: 0 });
  } finally {
    await n.close();
  }
});

test("the pub/sub connection dropped: the node's subscriptions resubscribe and recover, counted as the engine's", async () => {
  const n = await node({});
  try {
    const { got, events } = await subscribed(n, 'feed:dropped');
    await r.client('KILL', 'TYPE', 'pubsub');
    await until(() => events.length >= 2, 8000, 'a resubscription');
    assert.deepEqual(events.slice(0, 2).map(([e]) => e), ['subscribing', 'subscribed']);
    await n.api.publish('feed:dropped', { after: true });
    await until(() => got.length === 1, 5000, 'a publication after');
    assert.deepEqual(await resyncs(n), { gap: 0, position_check: 0, time_lag: 0, engine: 1 });
  } finally {
    await n.close();
  }
});
