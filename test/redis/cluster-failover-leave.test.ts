// A Redis Cluster master fails while its channels' only subscriber is leaving: once the replica has
// taken over, no Redis node holds those channels' sharded subscriptions (ioredis subscribes a lost
// node's channels again on the new master by itself; Herald must take back the ones nobody wants).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { client, sign, startNode, until, type TestNode } from '../helpers/herald.js';
import { RedisCluster } from '../helpers/redis.js';

let cluster: RedisCluster;
let node: TestNode;

before(async () => {
  cluster = await RedisCluster.start(3, 1);
  node = await startNode({
    engine: { type: 'redis', redis: { cluster: cluster.seeds } },
    channel: { namespaces: [{ name: 'leave', allow_subscribe_for_client: true }] },
  });
});

after(async () => {
  await node?.close();
  await cluster?.stop();
});

/** The sharded channels of `names` that any live master holds a subscription to. */
function heldAnywhere(names: string[]): string[] {
  const held = new Set<string>();
  for (const port of cluster.masterPorts()) {
    const out = spawnSync('redis-cli', ['-p', String(port), 'PUBSUB', 'SHARDCHANNELS', 'herald{leave:*'], { encoding: 'utf8', timeout: 2000 }).stdout;
    for (const line of out.split('\n')) if (names.includes(line.trim())) held.add(line.trim());
  }
  return [...held];
}

test("a master fails as its channels' subscriber leaves: after the failover no node holds them", async () => {
  const all = Array.from({ length: 90 }, (_, i) => `leave:c${i}`);
  const victim = cluster.ownerOf(`herald{${all[0]}}.p`);
  const channels = all.filter((ch) => cluster.ownerOf(`herald{${ch}}.p`) === victim);
  const redisNames = channels.map((ch) => `herald{${ch}}.p`);
  assert.ok(channels.length >= 10, `${channels.length} channels on one master`);

  const c = client(node, { token: await sign({ sub: 'u' }) });
  for (const ch of channels) c.newSubscription(ch).subscribe();
  c.connect();
  await until(() => Object.values(c.subscriptions()).every((s) => s.state === 'subscribed'), 10_000, 'subscribed');
  assert.deepEqual(heldAnywhere(redisNames).sort(), [...redisNames].sort(), 'subscribed on their master');

  await cluster.nodes.find((n) => n.port === victim)!.kill();
  // Herald notices the lost node and tells the subscriptions to resubscribe; the client leaves instead.
  await new Promise((r) => setTimeout(r, 1000));
  c.disconnect();

  // The replica takes over (cluster-node-timeout 2 s); ioredis's resubscription comes with its slot refresh.
  await until(() => {
    const masters = cluster.masterPorts();
    return masters.length === 3 && masters.every((p) => spawnSync('redis-cli', ['-p', String(p), 'CLUSTER', 'INFO'], { encoding: 'utf8', timeout: 2000 }).stdout.includes('cluster_state:ok'));
  }, 30_000, 'the replica to take over');
  const end = Date.now() + 15_000;
  let held = heldAnywhere(redisNames);
  while (held.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
    held = heldAnywhere(redisNames);
  }
  // Held for a moment is not enough: stay clear through ioredis's next slot refreshes too.
  for (let i = 0; i < 6 && held.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 500));
    held = heldAnywhere(redisNames);
  }
  assert.deepEqual(held, [], `still subscribed after the failover: ${held.length} of ${redisNames.length}`);
});
