// Many subscribers of one channel each get every publication in order; and however connections and
// subscriptions end (client unsubscribe, disconnect, terminate, refusals, server closes), the node
// keeps no client, subscription or channel behind.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { client, collect, openNamespace, sign, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

let node: TestNode;
before(async () => {
  node = await startNode({
    channel: {
      namespaces: [
        openNamespace('news', { allow_publish_for_client: true }),
        openNamespace('rec', { history_size: 3, history_ttl: '60s', force_recovery: true }),
        { name: 'secret' },
      ],
    },
  });
});
after(() => node.close());

const counts = async () => {
  const info = (await node.api.info()).nodes[0]!;
  return { clients: info.num_clients, subs: info.num_subs, channels: Object.keys((await node.api.channels()).channels).length };
};

test('30 centrifuge-js subscribers of one channel each get all 100 publications, in order', async () => {
  const clients = await Promise.all(
    Array.from({ length: 30 }, async (_, i) => {
      const c = client(node, { token: await userToken(`fan${i}`) });
      const sub = c.newSubscription('news:fan');
      const got = collect(sub);
      sub.subscribe();
      c.connect();
      await sub.ready(5000);
      return { c, got };
    }),
  );
  assert.deepEqual((await node.api.channels()).channels['news:fan'], { num_clients: 30 });
  for (let i = 0; i < 100; i++) await node.herald.publish('news:fan', i);
  await until(() => clients.every((x) => x.got.length === 100), 5000, 'every subscriber got everything');
  const expected = Array.from({ length: 100 }, (_, i) => i);
  for (const x of clients) assert.deepEqual(x.got, expected);
  for (const x of clients) x.c.disconnect();
});

test('600 sockets (more than one flush slice) get every publication of interleaved bursts once, in order', async () => {
  // The outbox flushes dirty sockets in slices and lets the event loop turn between them, so
  // publications land while a pass is under way: some sockets get them in this pass, others in the
  // next. Whichever, each socket must see every publication exactly once and in order.
  const clients = await Promise.all(
    Array.from({ length: 600 }, async () => {
      const c = await RawClient.open(node.wsUrl, { protocols: ['centrifuge-json'] });
      await c.connect({ token: await userToken('wide') });
      const sub = await c.call('subscribe', { channel: 'news:wide' });
      assert.equal(sub.error, undefined);
      return c;
    }),
  );
  const total = 300;
  for (let i = 0; i < total; i++) {
    await node.herald.publish('news:wide', i);
    if (i % 7 === 0) await new Promise((r) => setImmediate(r)); // let a slice go out mid-burst
  }
  await until(() => clients.every((c) => c.pushes('news:wide').length >= total), 20_000, 'every socket got every publication');
  await sleep(100);
  const expected = Array.from({ length: total }, (_, i) => i);
  for (const c of clients) assert.deepEqual(c.pushes('news:wide').map((p) => p.data), expected);
  // Publications that arrived together went out together: far fewer frames than publications.
  assert.ok(clients[0]!.frames.length < total, `${clients[0]!.frames.length} frames for ${total} publications`);
  for (const c of clients) c.close();
});

test('publications to 20 channels in one turn each reach their own subscribers, whole and once', async () => {
  // 20 sockets each get a different single publication in one turn, written at once through the
  // outbox's small cache of shared frames (more than it holds), and one socket gets all 20: the first
  // at once, the other 19 in one frame at the turn's flush.
  const n = 20;
  const open = async (channels: string[]) => {
    const c = await RawClient.open(node.wsUrl, { protocols: ['centrifuge-json'] });
    await c.connect({ token: await userToken('many') });
    for (const channel of channels) assert.equal((await c.call('subscribe', { channel })).error, undefined);
    return c;
  };
  const names = Array.from({ length: n }, (_, i) => `news:many${i}`);
  const singles = await Promise.all(names.map((name) => open([name])));
  const all = await open(names);
  const framesBefore = all.frames.length; // its connect and subscribe replies
  await Promise.all(names.map((name, i) => node.herald.publish(name, { i, pad: 'x'.repeat(i * 10) })));
  await until(() => singles.every((c, i) => c.pushes(names[i]!).length === 1) && all.frames.length > 0, 5000, 'every socket got its publication');
  await sleep(100);
  singles.forEach((c, i) => {
    assert.deepEqual(c.pushes(names[i]!).map((p) => p.data), [{ i, pad: 'x'.repeat(i * 10) }]);
    assert.equal(names.filter((name) => c.pushes(name).length > 0).length, 1, 'nothing of other channels');
  });
  assert.deepEqual(
    names.map((name) => all.pushes(name).map((p) => (p.data as { i: number }).i)),
    names.map((_, i) => [i]),
  );
  assert.ok(all.frames.length - framesBefore <= 2, `all 20 in ${all.frames.length - framesBefore} frames`);
  for (const c of [...singles, all]) c.close();
});

test('every way a subscription or connection ends leaves nothing behind', async () => {
  await sleep(50);
  // SDK: unsubscribe one, disconnect the client.
  const c = client(node, { token: await userToken('alice') });
  const a = c.newSubscription('news:a');
  const b = c.newSubscription('news:b');
  a.subscribe();
  b.subscribe();
  c.connect();
  await Promise.all([a.ready(2000), b.ready(2000)]);
  a.unsubscribe();
  await sleep(50);
  c.disconnect();

  const raws: RawClient[] = [];
  const open = async (user = 'bob') => {
    const r = await RawClient.open(node.wsUrl);
    await r.connect({ token: await userToken(user) });
    raws.push(r);
    return r;
  };
  // Terminated socket with subscriptions.
  const t = await open();
  await t.call('subscribe', { channel: 'news:t' });
  await t.call('subscribe', { channel: 'rec:t' });
  t.close();
  // Refused subscriptions: permission, unknown namespace, unrecoverable with flag 2.
  const refused = await open();
  await refused.call('subscribe', { channel: 'secret:x' });
  await refused.call('subscribe', { channel: 'nope:x' });
  for (let i = 0; i < 5; i++) await node.api.publish('rec:trim', i);
  assert.equal((await refused.call('subscribe', { channel: 'rec:trim', recover: true, offset: 1, flag: 2 })).error?.code, 112);
  // Closed by the server: bad request, subscription token for another channel, API disconnect.
  const bad = await open();
  await bad.call('subscribe', { channel: 'news:bad' });
  bad.sendRaw('{oops');
  await bad.waitClose();
  const wrong = await open();
  await wrong.call('subscribe', { channel: 'news:w' });
  wrong.send({ id: 99, subscribe: { channel: 'secret:w', token: await sign({ sub: 'bob', channel: 'secret:other' }, { expIn: 60 }) } });
  assert.equal((await wrong.waitClose()).code, 3500);
  const kicked = await open('carol');
  await kicked.call('subscribe', { channel: 'news:k' });
  await node.api.disconnect('carol');
  await kicked.waitClose();
  // Server unsubscribe and server-side subscriptions.
  const srv = await RawClient.open(node.wsUrl);
  await srv.connect({ token: await sign({ sub: 'dave', channels: ['news:srv'] }, { expIn: 60 }) });
  await node.api.subscribe('dave', 'rec:srv');
  await node.api.unsubscribe('dave', 'news:srv');
  srv.close();

  for (const r of raws) r.close();
  await until(() => refused.closeInfo !== undefined, 2000);
  let last = await counts();
  for (let i = 0; i < 50 && (last.clients || last.subs || last.channels); i++) {
    await sleep(20);
    last = await counts();
  }
  assert.deepEqual(last, { clients: 0, subs: 0, channels: 0 });
});
