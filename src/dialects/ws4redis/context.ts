// What a ws4redis session needs from its node.
import type { Logger } from 'pino';
import type { Ws4RedisConfig } from '../../config/schema.js';
import type { Engine } from '../../engine/engine.js';
import type { Hub } from '../../hub/hub.js';

/** Shared, read-only services of the ws4redis dialect on one node. */
export interface Ws4RedisContext {
  readonly config: Ws4RedisConfig;
  readonly engine: Engine;
  readonly hub: Hub;
  readonly log: Logger;
}
