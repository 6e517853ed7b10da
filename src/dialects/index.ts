// The dialects a node runs besides the native one, in the order they are offered upgrades and requests.
import type { DialectFactory } from './dialect.js';
import { createWebdisDialect } from './webdis/index.js';
import { createWs4RedisDialect } from './ws4redis/index.js';

/** Every optional dialect; each returns undefined when its config section leaves it disabled. */
export const DIALECTS: readonly DialectFactory[] = [createWebdisDialect, createWs4RedisDialect];
