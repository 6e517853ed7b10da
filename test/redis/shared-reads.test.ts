// A reconnect storm on the Redis engine: clients recovering from the same position at once share one
// history read (counted by Redis itself, INFO commandstats), and each still gets every publication it
// missed and every one after, exactly once and in order, while publications keep coming.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openNamespace, until } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';
import { useRedisNode } from '../helpers/redis.js';

const t = useRedisNode({
  client: { allow_anonymous_connect_without_token: true },
  channel: { namespaces: [openNamespace('feed', { history_size: 1000, history_ttl: '5m', force_recovery: true })] },
});

/** How many times Redis ran FCALL (herald_history and herald_publish alike) so far. */
async function fcalls(): Promise<number> {
  const stats = await t.client.info('commandstats');
  return Number(/cmdstat_fcall:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

test('50 clients recovering from one position at once: one history read (or a few), and each gets every publication once, in order', async () => {
  const channel = 'feed:storm';
  const first = await t.node.api.publish(channel, { i: 1 });
  const epoch = first.epoch;
  for (let i = 2; i <= 40; i++) await t.node.api.publish(channel, { i });
  const clients = await Promise.all(Array.from({ length: 50 }, () => RawClient.open(t.node.wsUrl)));
  await Promise.all(clients.map((c) => c.connect()));

  const before = await fcalls();
  // Every client asks at once to recover what came after offset 10.
  for (const c of clients) c.send({ id: 100, subscribe: { channel, recover: true, offset: 10, epoch } });
  await Promise.all(clients.map((c) => c.reply(100, 5000)));
  const reads = (await fcalls()) - before;
  assert.ok(reads <= 5, `${reads} history reads for 50 recoveries`);

  // Publications keep coming: each client ends with 11..60, no gap, no duplicate.
  for (let i = 41; i <= 60; i++) await t.node.api.publish(channel, { i });
  for (const c of clients) {
    const reply = c.messages.find((m) => m.id === 100)!;
    assert.equal(reply.subscribe.recovered, true);
    const recovered = (reply.subscribe.publications ?? []).map((p: { data: { i: number } }) => p.data.i);
    await until(() => recovered.length + c.pushes(channel).length >= 50, 5000, 'every publication');
    const got = [...recovered, ...c.pushes(channel).map((p) => p.data.i)];
    assert.deepEqual(got, Array.from({ length: 50 }, (_, k) => k + 11));
    c.close();
  }
});

test('a storm with publications arriving while the shared read is made: nothing lost, nothing twice', async () => {
  const channel = 'feed:racing';
  const first = await t.node.api.publish(channel, { i: 1 });
  const clients = await Promise.all(Array.from({ length: 30 }, () => RawClient.open(t.node.wsUrl)));
  await Promise.all(clients.map((c) => c.connect()));
  let published = 1;
  const publishing = (async () => {
    while (published < 200) await t.node.api.publish(channel, { i: ++published });
  })();
  for (const c of clients) c.send({ id: 7, subscribe: { channel, recover: true, offset: 1, epoch: first.epoch } });
  await Promise.all(clients.map((c) => c.reply(7, 5000)));
  await publishing;
  for (const c of clients) {
    const reply = c.messages.find((m) => m.id === 7)!;
    assert.equal(reply.subscribe.recovered, true, JSON.stringify(reply).slice(0, 200));
    const recovered = (reply.subscribe.publications ?? []).map((p: { data: { i: number } }) => p.data.i);
    await until(() => recovered.length + c.pushes(channel).length >= 199, 5000, 'every publication');
    const got = [...recovered, ...c.pushes(channel).map((p) => p.data.i)];
    assert.deepEqual(got, Array.from({ length: 199 }, (_, k) => k + 2));
    c.close();
  }
});
