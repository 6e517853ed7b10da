// Herald's public API: everything a program may import from the package.
export { createHerald, type CreateHeraldOptions, type Herald } from './herald.js';
export { HeraldApi, HeraldApiError, type PresentClient, type PublishOptions, type PublishResult } from './api/client.js';
export { loadConfig, type ConfigSources } from './config/load.js';
export type { HeraldConfig, HeraldConfigInput } from './config/schema.js';
export { HeraldError, type HeraldErrorCode } from './errors.js';
export type { Engine, Publication, StreamPosition } from './engine/engine.js';
export {
  Ws4RedisPublisher,
  WS4REDIS_SELF,
  type Ws4RedisPublisherOptions,
  type Ws4RedisMember,
} from './dialects/ws4redis/publisher.js';
export type { Audience as Ws4RedisAudience, Ws4RedisIdentity } from './dialects/ws4redis/channels.js';
