// Herald on a Redis Cluster: sharded pub/sub spreads channels over the masters; a master killed
// with a replica fails over and service resumes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { HeraldApiError } from '../../src/index.js';
import { client, sign, startNode, until, type TestNode } from '../helpers/herald.js';
import { RedisCluster } from '../helpers/redis.js';

const NAMESPACES = [{ name: 'feed', allow_subscribe_for_client: true, history_size: 100, history_ttl: '5m', force_recovery: true }];

function keysOn(port: number): number {
  const out = spawnSync('redis-cli', ['-p', String(port), '--scan', '--pattern', 'herald{*'], { encoding: 'utf8' }).stdout;
  return out.split('\n').filter(Boolean).length;
}

const masterPorts = (cluster: RedisCluster): number[] => cluster.masterPorts();

describe('Redis Cluster, 3 masters', () => {
  let cluster: RedisCluster;
  let node: TestNode;
  before(async () => {
    cluster = await RedisCluster.start(3);
    node = await startNode({ engine: { type: 'redis', redis: { cluster: cluster.seeds } }, channel: { namespaces: NAMESPACES } });
  });
  after(async () => {
    await node?.close();
    await cluster?.stop();
  });

  test('channels spread over every master; subscribers on many channels get their publications', async () => {
    const channels = Array.from({ length: 30 }, (_, i) => `feed:c${i}`);
    const c = client(node, { token: await sign({ sub: 'u' }) });
    const got = new Map<string, unknown[]>();
    for (const ch of channels) {
      const sub = c.newSubscription(ch);
      got.set(ch, []);
      sub.on('publication', (ctx) => got.get(ch)!.push(ctx.data));
      sub.subscribe();
    }
    c.connect();
    await until(() => c.state === 'connected', 5000);
    await until(() => Object.values(c.subscriptions()).length === 30 && Object.values(c.subscriptions()).every((s) => s.state === 'subscribed'), 10_000, 'subscribed');
    for (const ch of channels) for (let i = 0; i < 3; i++) await node.api.publish(ch, { ch, i });
    await until(() => [...got.values()].every((g) => g.length === 3), 10_000, 'every publication');
    for (const ch of channels) assert.deepEqual(got.get(ch), [0, 1, 2].map((i) => ({ ch, i })));
    const perMaster = masterPorts(cluster).map(keysOn);
    assert.equal(perMaster.length, 3);
    assert.ok(perMaster.every((n) => n > 0), `keys on every master: ${perMaster.join(', ')}`);
    c.disconnect();
  });
});

describe('Redis Cluster failover (3 masters, 3 replicas)', () => {
  let cluster: RedisCluster;
  let node: TestNode;
  before(async () => {
    cluster = await RedisCluster.start(3, 1);
    node = await startNode({ engine: { type: 'redis', redis: { cluster: cluster.seeds } }, channel: { namespaces: NAMESPACES } });
  });
  after(async () => {
    await node?.close();
    await cluster?.stop();
  });

  /** The port of the master that owns a Herald channel's slot now. */
  const ownerOf = (channel: string): number => cluster.ownerOf(`herald{${channel}}.p`);

  /** Kills the master of `channel`'s slot, then publishes n = from..from+4 as soon as the cluster takes them again. */
  async function failOver(channel: string, from: number): Promise<void> {
    const owner = ownerOf(channel);
    await cluster.nodes.find((n) => n.port === owner)!.kill();
    let n = from;
    const end = Date.now() + 30_000;
    while (Date.now() < end && n < from + 5) {
      try {
        await node.api.publish(channel, { n });
        n++;
      } catch (err) {
        assert.ok(err instanceof HeraldApiError && err.apiCode === 100, `a temporary error while failing over: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    assert.equal(n, from + 5, `publishing on ${channel} resumed after failover`);
  }

  test('a master is killed: its channels resubscribe and recover, the others are untouched; again for a second master', async () => {
    // Two channels whose slots live on different masters.
    const names = Array.from({ length: 40 }, (_, i) => `feed:f${i}`);
    const a = names[0]!;
    const b = names.find((ch) => ownerOf(ch) !== ownerOf(a))!;
    const c = client(node, { token: await sign({ sub: 'u' }) });
    const got = new Map<string, number[]>([[a, []], [b, []]]);
    const resubscribes = new Map<string, number>([[a, 0], [b, 0]]);
    // What the client saw, to tell on failure why a channel stayed silent.
    const t0 = Date.now();
    const events: string[] = [];
    const seen = (what: string, ctx: unknown) => events.push(`${Date.now() - t0} ms ${what} ${JSON.stringify(ctx)}`);
    const waitFor = (check: () => boolean, ms: number, what: string) =>
      until(check, ms, what).catch((err: Error) => {
        throw new Error(`${err.message}; the client saw:\n${events.join('\n')}`);
      });
    for (const ch of [a, b]) {
      const sub = c.newSubscription(ch);
      sub.on('publication', (ctx) => got.get(ch)!.push((ctx.data as { n: number }).n));
      sub.on('subscribing', (ctx) => {
        resubscribes.set(ch, resubscribes.get(ch)! + 1);
        seen('subscribing', ctx);
      });
      sub.on('subscribed', (ctx) => seen('subscribed', ctx));
      sub.on('error', (ctx) => seen('error', ctx));
      sub.on('publication', (ctx) => seen('publication', { channel: ctx.channel, data: ctx.data, offset: ctx.offset }));
      sub.subscribe();
    }
    c.connect();
    await until(() => Object.values(c.subscriptions()).every((s) => s.state === 'subscribed'), 10_000, 'subscribed');
    const initial = { a: resubscribes.get(a)!, b: resubscribes.get(b)! };
    for (const ch of [a, b]) await node.api.publish(ch, { n: 0 });
    await until(() => got.get(a)!.length === 1 && got.get(b)!.length === 1, 5000, 'the first publications');
    // After a failover the client resubscribes with its own backoff (centrifuge-js waits up to 20 s
    // between tries), so the wait allows one full backoff step after publishing resumed.
    seen('killing the master of', a);
    await failOver(a, 1);
    seen('published after failover on', a);
    await waitFor(() => got.get(a)!.includes(5), 30_000, `${a} to receive after failover`);
    assert.ok(resubscribes.get(a)! > initial.a, `${a} was told to resubscribe`);
    assert.equal(resubscribes.get(b), initial.b, `${b}, on a master that stayed up, was not disturbed`);
    await node.api.publish(b, { n: 1 });
    await until(() => got.get(b)!.includes(1), 5000, `${b} to keep receiving`);
    // A second master fails later: its channel notices too.
    seen('killing the master of', b);
    await failOver(b, 2);
    seen('published after failover on', b);
    await waitFor(() => got.get(b)!.includes(6), 30_000, `${b} to receive after the second failover`);
    assert.ok(resubscribes.get(b)! > initial.b, `${b} was told to resubscribe`);
    for (const ch of [a, b]) {
      const seen = got.get(ch)!;
      assert.deepEqual(seen, [...new Set(seen)].sort((x, y) => x - y), `${ch}: in order, no duplicates`);
      assert.deepEqual(seen, Array.from({ length: seen.length }, (_, i) => i), `${ch}: nothing missing (recovered from history)`);
    }
    c.disconnect();
  });
});
