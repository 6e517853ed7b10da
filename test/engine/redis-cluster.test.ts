import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { patternChannel, rawChannel } from '../../src/engine/engine.js';
import { RedisEngine } from '../../src/engine/redis.js';
import { RedisCluster } from '../helpers/redis.js';
import { engineContract } from './contract.js';

let cluster: RedisCluster;
before(async () => {
  cluster = await RedisCluster.start(3);
});
after(() => cluster.stop());

/** An engine on the test cluster with sharded pub/sub. */
const clusterEngine = (prefix: string, opts: { historyMetaTtlMs: number; idempotentResultTtlMs: number }) =>
  new RedisEngine({ ...opts, cluster: cluster.seeds, prefix, commandTimeoutMs: 5000, shardedPubsub: true, log: pino({ level: 'silent' }) });

engineContract({
  name: 'redis cluster (sharded pub/sub)',
  create: async (opts) => clusterEngine('contract', opts),
});

test('a healthy cluster keeps every subscription across its periodic slot refreshes: no resync', async () => {
  const engine = clusterEngine('steady', { historyMetaTtlMs: 60_000, idempotentResultTtlMs: 60_000 });
  const resyncs: unknown[] = [];
  const got: string[] = [];
  await engine.start({ onPublication: (channel) => void got.push(channel), onResync: (channels) => void resyncs.push(channels ?? 'all') });
  try {
    // Sharded channels on every master, and a raw channel and a pattern on the plain subscriber.
    const native = Array.from({ length: 12 }, (_, i) => `steady:${i}`);
    for (const ch of [...native, rawChannel('steady-raw'), patternChannel('steady-p.*')]) await engine.subscribe(ch);
    // The engine refreshes the slot table every 2 s; each refresh checks the subscriptions.
    await new Promise((r) => setTimeout(r, 5_000));
    assert.deepEqual(resyncs, []);
    for (const ch of native) await engine.publish(ch, { data: Buffer.from('"x"') });
    const end = Date.now() + 5000;
    while (got.length < native.length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual([...got].sort(), [...native].sort());
  } finally {
    await engine.close();
  }
});
