import { after, before } from 'node:test';
import { pino } from 'pino';
import { RedisEngine } from '../../src/engine/redis.js';
import { RedisCluster } from '../helpers/redis.js';
import { engineContract } from './contract.js';

let cluster: RedisCluster;
before(async () => {
  cluster = await RedisCluster.start(3);
});
after(() => cluster.stop());

engineContract({
  name: 'redis cluster (sharded pub/sub)',
  create: async (opts) =>
    new RedisEngine({
      ...opts,
      cluster: cluster.seeds,
      prefix: 'contract',
      commandTimeoutMs: 5000,
      shardedPubsub: true,
      log: pino({ level: 'silent' }),
    }),
});
