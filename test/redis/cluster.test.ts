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

function masterPorts(cluster: RedisCluster): number[] {
  return cluster.nodes
    .map((n) => n.port)
    .filter((p) => /role:master/.test(spawnSync('redis-cli', ['-p', String(p), 'INFO', 'replication'], { encoding: 'utf8' }).stdout));
}

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

  test('a master is killed: after failover publications flow again and the subscriber keeps receiving', async () => {
    const c = client(node, { token: await sign({ sub: 'u' }) });
    const sub = c.newSubscription('feed:failover');
    const got: number[] = [];
    sub.on('publication', (ctx) => got.push((ctx.data as { n: number }).n));
    sub.subscribe();
    c.connect();
    await sub.ready(5000);
    await node.api.publish('feed:failover', { n: 0 });
    await until(() => got.length === 1, 5000);
    // Kill the master that owns this channel's slot.
    const slot = Number(spawnSync('redis-cli', ['-p', String(cluster.nodes[0]!.port), 'CLUSTER', 'KEYSLOT', 'herald{feed:failover}.p'], { encoding: 'utf8' }).stdout.trim());
    const owner = masterPorts(cluster).find((p) => {
      const nodes = spawnSync('redis-cli', ['-p', String(p), 'CLUSTER', 'NODES'], { encoding: 'utf8' }).stdout;
      const me = nodes.split('\n').find((l) => l.includes('myself'))!;
      return me
        .split(' ')
        .slice(8)
        .some((r) => {
          const [lo, hi] = r.split('-').map(Number);
          return slot >= lo! && slot <= (hi ?? lo)!;
        });
    })!;
    assert.ok(owner, 'found the owner of the slot');
    await cluster.nodes.find((n) => n.port === owner)!.kill();
    let n = 1;
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      try {
        await node.api.publish('feed:failover', { n });
        n++;
        if (n > 5) break;
      } catch (err) {
        assert.ok(err instanceof HeraldApiError && err.apiCode === 100, `a temporary error while failing over: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    assert.ok(n > 5, 'publishing resumed after failover');
    await until(() => got.includes(5), 20_000, 'the subscriber to receive after failover');
    const after = got.filter((x) => x >= 1);
    assert.deepEqual(after, [...new Set(after)].sort((x, y) => x - y), 'in order, no duplicates');
    c.disconnect();
  });
});
