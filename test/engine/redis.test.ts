import { after, before } from 'node:test';
import { pino } from 'pino';
import { RedisEngine } from '../../src/engine/redis.js';
import { RedisProcess } from '../helpers/redis.js';
import { engineContract } from './contract.js';

let redis: RedisProcess;
before(async () => {
  redis = await RedisProcess.start();
});
after(() => redis.stop());

engineContract({
  name: 'redis',
  create: async (opts) =>
    new RedisEngine({
      ...opts,
      url: redis.url,
      prefix: 'contract',
      commandTimeoutMs: 5000,
      shardedPubsub: true,
      log: pino({ level: 'silent' }),
    }),
});
