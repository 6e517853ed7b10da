// While Redis (or the cluster master owning a channel's slot) cannot take a subscribe, every native
// subscribe is answered error 100 (temporary) well within centrifuge-js's 5 s command timeout, which
// would otherwise close the whole connection. A native client's commands are answered in order, so
// a subscribe that waits for Redis holds back the client's next ones: each must be answered fast.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { slotOf } from '../../src/engine/redis-cluster-conns.js';
import { sign, startNode, until } from '../helpers/herald.js';
import { RawClient, type Msg } from '../helpers/raw.js';
import { RedisCluster, RedisProcess } from '../helpers/redis.js';

/** What the SDK waits for a reply before it closes the connection, less a margin. */
const PROMPT_MS = 2_500;

const NAMESPACES = [{ name: 'feed', allow_subscribe_for_client: true, history_size: 100, history_ttl: '5m', force_recovery: true }];

/** Sends a subscribe and resolves with its reply and how long it took (bounded wait). */
async function timedSubscribe(c: RawClient, channel: string): Promise<{ channel: string; ms: number; reply: Msg }> {
  const id = c.id();
  const start = Date.now();
  c.send({ id, subscribe: { channel } });
  const reply = await c.reply(id, 15_000);
  return { channel, ms: Date.now() - start, reply };
}

test('Redis stopped (SIGSTOP): a channel left and subscribed again, and others, sent together, are each answered error 100 within 2.5 s; the connection stays; Redis keeps nothing they left', async () => {
  const redis = await RedisProcess.start();
  const node = await startNode({ engine: { type: 'redis', redis: { url: redis.url } }, channel: { namespaces: NAMESPACES } });
  const admin = redis.client();
  const c = await RawClient.open(node.wsUrl);
  let paused = false;
  try {
    await c.connect({ token: await sign({ sub: 'u' }) });
    assert.ok((await c.call('subscribe', { channel: 'feed:s0' })).subscribe, 'feed:s0 subscribed');
    redis.pause();
    paused = true;
    // In one frame, as centrifuge-js sends what it has queued. They are handled in order: feed:s0's
    // subscribe waits for its UNSUBSCRIBE (which Redis does not answer), the others for it.
    const channels = ['feed:s0', 'feed:s1', 'feed:s2', 'feed:s3', 'feed:s4'];
    const sent = Date.now();
    const leave = c.id();
    const ids = channels.map(() => c.id());
    c.send({ id: leave, unsubscribe: { channel: 'feed:s0' } }, ...channels.map((channel, i) => ({ id: ids[i]!, subscribe: { channel } })));
    const replies = await Promise.all(ids.map(async (id, i) => ({ channel: channels[i]!, reply: await c.reply(id, 15_000), ms: Date.now() - sent })));
    const told = replies.map((r) => `${r.channel} ${r.ms} ms ${JSON.stringify(r.reply.error ?? 'ok')}`).join(', ');
    assert.equal((await c.reply(leave)).error, undefined, 'the unsubscribe is answered');
    for (const { channel, reply, ms } of replies) {
      assert.equal(reply.error?.code, 100, `${channel}: error 100 (${told})`);
      assert.equal(reply.error?.temporary, true, `${channel}: temporary`);
      assert.ok(ms <= PROMPT_MS, `${channel} answered within ${PROMPT_MS} ms: ${told}`);
    }
    assert.equal(c.closeInfo, undefined, 'the connection stays');
    redis.resume();
    paused = false;
    // Once Redis answers again, the client's retry subscribes.
    await until(async () => (await timedSubscribe(c, 'feed:s1')).reply.subscribe !== undefined, 10_000, 'a subscribe after Redis resumed');
    await node.api.publish('feed:s1', { after: true });
    await c.waitFor((m) => m.push?.channel === 'feed:s1' && m.push.pub !== undefined, 3000, 'a publication on feed:s1');
    // The UNSUBSCRIBE Redis ran when it resumed took feed:s0 away; the subscribes it never got left nothing.
    await until(
      async () => {
        const held = ((await admin.call('PUBSUB', 'CHANNELS', 'herald{feed:*')) as string[]).sort();
        return JSON.stringify(held) === JSON.stringify(['herald{feed:s1}.p']);
      },
      5000,
      'Redis to hold feed:s1 alone',
    );
  } finally {
    if (paused) redis.resume();
    c.close();
    admin.disconnect();
    await node.close();
    await redis.stop();
  }
});

test('Redis Cluster master killed (no replica): its channels, resubscribed at once, are each answered error 100 within 2.5 s; a channel on another master keeps its publications and the connection stays', async () => {
  const cluster = await RedisCluster.start(3);
  // The cluster keeps serving the slots of the masters that are up (as the repro's cluster did).
  for (const n of cluster.nodes) spawnSync('redis-cli', ['-p', String(n.port), 'CONFIG', 'SET', 'cluster-require-full-coverage', 'no'], { timeout: 2000 });
  const node = await startNode({
    engine: { type: 'redis', redis: { cluster: cluster.seeds } },
    channel: { namespaces: NAMESPACES, without_namespace: { allow_subscribe_for_client: true } },
  });
  const c = await RawClient.open(node.wsUrl);
  try {
    // Which master owns each slot, read once.
    const slots = JSON.parse(
      spawnSync('redis-cli', ['-p', String(cluster.nodes[0]!.port), '--json', 'CLUSTER', 'SLOTS'], { encoding: 'utf8', timeout: 2000 }).stdout,
    ) as Array<[number, number, [string, number, ...unknown[]]]>;
    const owner = (channel: string) => {
      const slot = slotOf(`herald{${channel}}.p`);
      return slots.find(([lo, hi]) => slot >= lo && slot <= hi)![2][1];
    };
    const names = Array.from({ length: 60 }, (_, i) => (i % 2 ? `feed:k${i}` : `k${i}`)); // with history and without
    const victim = owner(names[0]!);
    const onVictim = names.filter((ch) => owner(ch) === victim).slice(0, 5);
    const healthy = names.find((ch) => owner(ch) !== victim)!;
    assert.equal(onVictim.length, 5);
    await c.connect({ token: await sign({ sub: 'u' }) });
    for (const ch of [...onVictim, healthy]) assert.ok((await c.call('subscribe', { channel: ch })).subscribe, `${ch} subscribed`);

    // As centrifuge-js does: on unsubscribe 2500, subscribe again at once.
    const resubscribes: Array<Promise<{ channel: string; ms: number; reply: Msg }>> = [];
    let seen = c.messages.length;
    const watch = setInterval(() => {
      for (; seen < c.messages.length; seen++) {
        const push = c.messages[seen]!.push;
        if (push?.unsubscribe?.code === 2500) resubscribes.push(timedSubscribe(c, push.channel));
      }
    }, 5);
    try {
      await cluster.nodes.find((n) => n.port === victim)!.kill();
      await until(() => resubscribes.length === onVictim.length, 5000, 'unsubscribe 2500 on every channel of the killed master');
      const replies = await Promise.all(resubscribes);
      const told = replies.map((r) => `${r.channel} ${r.ms} ms ${JSON.stringify(r.reply.error ?? 'ok')}`).join(', ');
      assert.deepEqual(replies.map((r) => r.channel).sort(), [...onVictim].sort());
      for (const r of replies) {
        assert.equal(r.reply.error?.code, 100, `${r.channel}: error 100 while its master is down (${told})`);
        assert.ok(r.ms <= PROMPT_MS, `${r.channel} answered within ${PROMPT_MS} ms: ${told}`);
      }
    } finally {
      clearInterval(watch);
    }
    assert.equal(c.closeInfo, undefined, 'the connection stays');
    assert.equal(c.messages.some((m) => m.push?.channel === healthy && m.push.unsubscribe), false, `${healthy}, on a master that stayed up, was not disturbed`);
    await node.api.publish(healthy, { n: 1 });
    await c.waitFor((m) => m.push?.channel === healthy && m.push.pub !== undefined, 3000, `a publication on ${healthy}`);
  } finally {
    c.close();
    await node.close();
    await cluster.stop();
  }
});
