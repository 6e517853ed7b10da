// Presence and join/leave through centrifuge-js and raw ws: who is subscribed (with connection and
// channel info), counts, join and leave events (asked for, forced, overridden by a token), the
// permission rules, the server API's presence calls, and entries kept alive past their TTL.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Centrifuge, Subscription } from 'centrifuge';
import { CompactSign } from 'jose';
import { API_KEY, SECRET, client, openNamespace, record, sign, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

let node: TestNode;
before(async () => {
  node = await startNode({
    client: { allow_anonymous_connect_without_token: true, presence_update_interval: '300ms', expired_close_delay: '100ms' },
    // Entries live 1 s: the presence update every 300 ms is what keeps them (tested below).
    engine: { presence_ttl: '1s' },
    channel: {
      namespaces: [
        openNamespace('room', { presence: true, join_leave: true, allow_presence_for_subscriber: true }),
        openNamespace('lobby', { presence: true, join_leave: true, force_push_join_leave: true, allow_presence_for_client: true }),
        openNamespace('anon', { presence: true, allow_presence_for_client: true, allow_presence_for_anonymous: true }),
        openNamespace('quiet', { presence: true }),
        openNamespace('joins', { join_leave: true, allow_presence_for_subscriber: true }),
        openNamespace('plain'),
        openNamespace('hist', { presence: true, allow_presence_for_client: true, history_size: 10, history_ttl: '60s', force_positioning: true }),
      ],
    },
  });
});
after(() => node.close());

async function sdk(user: string, claims: Record<string, unknown> = {}): Promise<Centrifuge> {
  const c = client(node, user ? { token: await userToken(user, claims) } : {});
  c.connect();
  await c.ready(3000);
  return c;
}

async function subscribed(c: Centrifuge, channel: string, opts: Parameters<Centrifuge['newSubscription']>[1] = {}): Promise<Subscription> {
  const sub = c.newSubscription(channel, opts);
  sub.subscribe();
  await sub.ready(3000);
  return sub;
}

/** A subscription, subscribed, that records the named events it emits, in order, as [event, ctx]. */
async function recorded(
  c: Centrifuge,
  channel: string,
  opts: Parameters<Centrifuge['newSubscription']>[1],
  ...names: string[]
): Promise<{ sub: Subscription; events: Array<[string, any]> }> {
  const sub = c.newSubscription(channel, opts);
  const events = record(sub, ...names);
  sub.subscribe();
  await sub.ready(3000);
  return { sub, events };
}

const code = (p: Promise<unknown>) => p.then(() => 0, (e: { code?: number }) => e.code);

async function api(method: string, params: Record<string, unknown>): Promise<any> {
  const res = await fetch(`${node.url}/api/${method}`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify(params) });
  return res.json();
}

/** A connection token whose claims are this JSON text as written (a JS object would round big integers). */
function rawToken(claims: string): Promise<string> {
  return new CompactSign(new TextEncoder().encode(claims)).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
}

test('presence lists every subscribed client with its info; stats count clients and distinct users; a client that leaves is gone at once', async () => {
  const alice = client(node, { token: await rawToken('{"sub":"alice","info":{"name":"Alice","id":12345678901234567890}}') });
  alice.connect();
  await alice.ready(3000);
  const alice2 = await sdk('alice');
  const bob = await sdk('bob');
  const a = await subscribed(alice, 'room:1');
  await subscribed(alice2, 'room:1');
  const b = await subscribed(bob, 'room:1');

  const { clients } = await a.presence();
  assert.equal(Object.keys(clients).length, 3);
  const withInfo = Object.values(clients).filter((c) => c.connInfo !== undefined);
  assert.deepEqual(withInfo.map((c) => [c.user, c.connInfo]), [['alice', { name: 'Alice', id: 12345678901234567000 }]]); // as JS reads it
  assert.deepEqual(Object.values(clients).map((c) => c.user).sort(), ['alice', 'alice', 'bob']);
  for (const [id, info] of Object.entries(clients)) assert.equal(info.client, id);
  assert.deepEqual(await b.presenceStats(), { numClients: 3, numUsers: 2 });
  assert.deepEqual(await bob.presenceStats('room:1'), { numClients: 3, numUsers: 2 });

  // The conn_info is the token's raw JSON, as written (a 64-bit integer kept), on the wire.
  const r = await RawClient.open(node.wsUrl);
  await r.connect({ token: await userToken('carol') });
  await r.call('subscribe', { channel: 'room:1' });
  const reply = await r.call('presence', { channel: 'room:1' });
  assert.ok(r.frames.some((f) => f.includes('"conn_info":{"name":"Alice","id":12345678901234567890}')), 'conn_info kept as written');
  assert.equal(Object.keys(reply.presence.presence).length, 4);
  r.close();

  alice2.disconnect();
  bob.disconnect();
  // Leaving removes the entry at once, long before its 1 s TTL (which presence updates would renew).
  const left = Date.now();
  while ((await a.presenceStats()).numClients !== 1) {
    assert.ok(Date.now() - left < 700, 'the leavers were removed at once');
    await sleep(20);
  }
  assert.deepEqual(await a.presenceStats(), { numClients: 1, numUsers: 1 });
  alice.disconnect();
});

test('join and leave: a subscriber that asks (joinLeave) is sent them, its own join included; one that does not ask is not', async () => {
  const alice = await sdk('alice');
  const { sub: a, events } = await recorded(alice, 'room:jl', { joinLeave: true }, 'join', 'leave');
  await until(() => events.length === 1, 3000, 'own join');
  assert.equal(events[0]![0], 'join');
  assert.equal(events[0]![1].info.user, 'alice');
  assert.equal(events[0]![1].channel, 'room:jl');

  const quietOne = await sdk('dave');
  const { events: qEvents } = await recorded(quietOne, 'room:jl', {}, 'join', 'leave'); // no joinLeave: not sent joins and leaves

  const bob = await sdk('bob', { info: { team: 'blue' } });
  await subscribed(bob, 'room:jl');
  await until(() => events.length === 3, 3000, "dave's and bob's joins");
  assert.deepEqual(events.slice(1).map(([e, ctx]) => [e, ctx.info.user]), [['join', 'dave'], ['join', 'bob']]);
  assert.deepEqual(events[2]![1].info.connInfo, { team: 'blue' });
  bob.disconnect();
  await until(() => events.length === 4, 3000, "bob's leave");
  assert.deepEqual([events[3]![0], events[3]![1].info.user], ['leave', 'bob']);
  await sleep(100);
  assert.equal(qEvents.length, 0, 'a subscriber that did not ask gets no join/leave');
  alice.disconnect();
  quietOne.disconnect();
});

test('a subscriber is not sent its own leave: unsubscribe, server API unsubscribe, expired subscription token', async () => {
  const r = await RawClient.open(node.wsUrl);
  await r.connect({ token: await userToken('frank') });
  const leaves = () => r.messages.filter((m) => m.push?.leave);
  await r.call('subscribe', { channel: 'room:own', join_leave: true });
  await until(() => r.messages.some((m) => m.push?.join), 3000, 'own join');
  await r.call('unsubscribe', { channel: 'room:own' });
  await r.call('subscribe', { channel: 'lobby:own' });
  assert.deepEqual(await api('unsubscribe', { user: 'frank', channel: 'lobby:own' }), { result: {} });
  await until(() => r.messages.some((m) => m.push?.unsubscribe?.code === 2000), 3000, 'unsubscribe push 2000');
  const short = await sign({ sub: 'frank', channel: 'lobby:exp' }, { expIn: 2 }); // whole seconds: 1 could be over at once
  await r.call('subscribe', { channel: 'lobby:exp', token: short });
  await until(() => r.messages.some((m) => m.push?.unsubscribe?.code === 2501), 5000, 'unsubscribe push 2501');
  // Another client's join and leave come after: had its own leaves been sent, they would be before.
  await r.call('subscribe', { channel: 'lobby:own2' });
  const other = await sdk('gina');
  const o = await subscribed(other, 'lobby:own2');
  o.unsubscribe();
  await until(() => leaves().length === 1, 3000, "the other client's leave");
  assert.deepEqual(leaves().map((m) => m.push.leave.info.user), ['gina'], 'no leave of its own');
  other.disconnect();
  r.close();
});

test('force_push_join_leave sends joins and leaves to every subscriber; an unsubscribe is a leave', async () => {
  const alice = await sdk('alice');
  const { sub: a, events } = await recorded(alice, 'lobby:1', {}, 'join', 'leave');
  const bob = await sdk('bob');
  const b = await subscribed(bob, 'lobby:1');
  await until(() => events.length === 2, 3000, 'own join and bob');
  b.unsubscribe();
  await until(() => events.length === 3, 3000, "bob's leave");
  assert.deepEqual(events.map(([e, ctx]) => `${e} ${ctx.info.user}`), ['join alice', 'join bob', 'leave bob']);
  assert.equal((await a.presenceStats()).numClients, 1);
  alice.disconnect();
  bob.disconnect();
});

test('a subscription token overrides presence and join_leave, and its info is the chan_info', async () => {
  const watcher = await sdk('alice');
  const { sub: w, events } = await recorded(watcher, 'room:tok', { joinLeave: true }, 'join', 'leave');
  await until(() => events.length === 1, 3000, 'own join');

  const ghost = await sdk('ghost');
  const ghostToken = await sign({ sub: 'ghost', channel: 'room:tok', override: { presence: { value: false }, join_leave: { value: false } } });
  await subscribed(ghost, 'room:tok', { token: ghostToken });
  const host = await sdk('host');
  const hostToken = await sign({ sub: 'host', channel: 'room:tok', info: { role: 'host' } });
  await subscribed(host, 'room:tok', { token: hostToken });
  await until(() => events.length === 2, 3000, "host's join");
  assert.deepEqual([events[1]![1].info.user, events[1]![1].info.chanInfo], ['host', { role: 'host' }]);
  const { clients } = await w.presence();
  assert.deepEqual(Object.values(clients).map((c) => c.user).sort(), ['alice', 'host'], 'the ghost is not present');
  assert.deepEqual(Object.values(clients).find((c) => c.user === 'host')!.chanInfo, { role: 'host' });
  ghost.disconnect();
  await sleep(100);
  assert.equal(events.length, 2, 'the ghost left no leave');
  for (const c of [watcher, host]) c.disconnect();
});

test('permissions: 108 where presence is off, 103 without access, 102 for an unknown namespace; join_leave needs presence access', async () => {
  const alice = await sdk('alice');
  await subscribed(alice, 'quiet:1');
  assert.equal(await code(alice.presence('quiet:1')), 103, 'presence on, but no access rule');
  assert.equal(await code(alice.presence('room:other')), 103, 'allow_presence_for_subscriber: not subscribed');
  assert.equal(await code(alice.presenceStats('room:other')), 103);
  assert.equal(await code(alice.presence('lobby:any')), 0, 'allow_presence_for_client: no subscription needed');
  assert.equal(await code(alice.presence('plain:1')), 108);
  assert.equal(await code(alice.presenceStats('plain:1')), 108);
  assert.equal(await code(alice.presence('nope:1')), 102);
  assert.equal(alice.state, 'connected');

  const anonymous = client(node);
  anonymous.connect();
  await anonymous.ready(3000);
  assert.equal(await code(anonymous.presence('lobby:any')), 103, 'anonymous clients need allow_presence_for_anonymous');
  assert.equal(await code(anonymous.presence('anon:any')), 0);
  // Join/leave without presence: joins are sent to subscribers that ask and may read presence.
  const { events: anonEvents } = await recorded(anonymous, 'joins:1', { joinLeave: true }, 'join');
  const { sub: k, events } = await recorded(alice, 'joins:1', { joinLeave: true }, 'join');
  await until(() => events.length === 1, 3000, "alice's own join");
  await sleep(100);
  assert.equal(anonEvents.length, 0, 'an anonymous subscriber may not read presence here, so is not sent joins');
  assert.equal(await code(k.presence()), 108, 'join_leave alone keeps no presence');
  anonymous.disconnect();
  alice.disconnect();
});

test('server API: presence and presence_stats of any channel with presence; 108 and 102 as the client gets', async () => {
  const alice = await sdk('alice', { info: { n: 1 } });
  await subscribed(alice, 'quiet:api');
  const p = await api('presence', { channel: 'quiet:api' });
  const entries = Object.entries(p.result.presence) as Array<[string, any]>;
  assert.equal(entries.length, 1);
  assert.deepEqual(entries[0]![1], { user: 'alice', client: entries[0]![0], conn_info: { n: 1 } });
  assert.deepEqual(await api('presence_stats', { channel: 'quiet:api' }), { result: { num_clients: 1, num_users: 1 } });
  assert.deepEqual(await api('presence', { channel: 'quiet:empty' }), { result: { presence: {} } });
  assert.deepEqual(await api('presence_stats', { channel: 'quiet:empty' }), { result: { num_clients: 0, num_users: 0 } });
  assert.equal((await api('presence', { channel: 'plain:1' })).error.code, 108);
  assert.equal((await api('presence_stats', { channel: 'nope:1' })).error.code, 102);
  assert.deepEqual(await node.herald.api('presence_stats', { channel: 'quiet:api' }), { num_clients: 1, num_users: 1 });
  alice.disconnect();
});

test("a present client stays present past the entries' TTL: its node adds it again every update interval", async () => {
  const alice = await sdk('alice');
  const a = await subscribed(alice, 'room:long');
  await sleep(2_000); // twice the 1 s TTL
  assert.deepEqual(await a.presenceStats(), { numClients: 1, numUsers: 1 });
  alice.disconnect();
});

test('server API subscribe: the connection enters presence with the call\'s info as chan_info, and its join is sent', async () => {
  const watcher = await sdk('alice');
  const { sub: w, events } = await recorded(watcher, 'lobby:api', {}, 'join');
  const erin = await sdk('erin');
  const pushed = new Promise((resolve) => erin.once('subscribed', resolve));
  assert.deepEqual(await api('subscribe', { user: 'erin', channel: 'lobby:api', info: { seat: 3 } }), { result: {} });
  await pushed;
  await until(() => events.length === 2, 3000, "erin's join");
  assert.deepEqual([events[1]![1].info.user, events[1]![1].info.chanInfo], ['erin', { seat: 3 }]);
  const p = await api('presence', { channel: 'lobby:api' });
  const entry = Object.values(p.result.presence as Record<string, any>).find((e) => e.user === 'erin');
  assert.deepEqual(entry.chan_info, { seat: 3 });
  watcher.disconnect();
  erin.disconnect();
});

test("a connection's new info (refresh) is in its presence entries from the next presence update", async () => {
  const grace = await sdk('grace', { info: { v: 1 } });
  const g = await subscribed(grace, 'room:refresh');
  const infoOf = async () => Object.values((await g.presence()).clients).find((c) => c.user === 'grace')!.connInfo;
  assert.deepEqual(await infoOf(), { v: 1 });
  assert.deepEqual(await api('refresh', { user: 'grace', info: { v: 2 } }), { result: {} });
  const refreshed = Date.now();
  while (JSON.stringify(await infoOf()) !== '{"v":2}') {
    assert.ok(Date.now() - refreshed < 3000, 'the new info within a few presence updates (300 ms)');
    await sleep(50);
  }
  grace.disconnect();
});

test('a pretty-printed token info is kept on one line: frames stay whole, presence shows it', async () => {
  const pretty = await rawToken('{\n  "sub": "henry",\n  "info": {\n    "desk": 7,\n    "big": 12345678901234567890\n  }\n}');
  const r = await RawClient.open(node.wsUrl);
  await r.connect({ token: pretty });
  await r.call('subscribe', { channel: 'room:pretty', join_leave: true });
  const reply = await r.call('presence', { channel: 'room:pretty' });
  await until(() => r.messages.some((m) => m.push?.join), 3000, 'own join');
  assert.deepEqual(r.messages.filter((m) => m.__unparsable), [], 'every line of every frame is one JSON message');
  const entry = Object.values(reply.presence.presence as Record<string, any>)[0];
  assert.deepEqual(entry.conn_info, { desk: 7, big: 12345678901234567000 });
  assert.ok(r.frames.some((f) => f.includes('"big": 12345678901234567890')), 'the 64-bit integer as written');
  r.close();
});

test('a subscription the engine loses while it is being set up is not left in presence', async () => {
  const engine = (node.herald as unknown as { engine: { history: (...a: unknown[]) => Promise<unknown> } }).engine;
  const hub = (node.herald as unknown as { hub: { onResync: (channels: string[]) => void } }).hub;
  const history = engine.history;
  // The position read takes 300 ms; the engine loses the channel meanwhile (as a failover does).
  engine.history = async (...a: unknown[]) => {
    await sleep(300);
    return history.apply(engine, a);
  };
  try {
    const r = await RawClient.open(node.wsUrl);
    await r.connect({ token: await userToken('ivan') });
    const reply = r.call('subscribe', { channel: 'hist:lost' });
    await sleep(100);
    hub.onResync(['hist:lost']);
    assert.equal((await reply).error?.code, 100, 'a temporary error: the client subscribes again');
    r.close();
  } finally {
    engine.history = history;
  }
  await sleep(1_500); // past the 1 s TTL: an entry its node still kept would be there
  assert.deepEqual(await api('presence_stats', { channel: 'hist:lost' }), { result: { num_clients: 0, num_users: 0 } });
});
