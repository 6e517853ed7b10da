// The ws4redis dialect (django-websocket-redis): pages open `/ws/<facility>?subscribe-broadcast&…`
// and receive what Python's RedisPublisher (or Ws4RedisPublisher) publishes on the same Redis.
import type { Dialect, DialectFactory } from '../dialect.js';
import { isWs4RedisName } from './channels.js';
import { encodePayload, WS4REDIS_FORMAT } from './frames.js';
import { IdentityResolver } from './identity.js';
import { SafetyRules } from './safety.js';
import { Ws4RedisEndpoint } from './websocket.js';

/** Creates the ws4redis dialect when `ws4redis.enabled` is set. */
export const createWs4RedisDialect: DialectFactory = ({ config, engine, hub, log, tokens }): Dialect | undefined => {
  const settings = config.ws4redis;
  if (!settings.enabled) return undefined;
  const ctx = { config: settings, engine, hub, log: log.child({ dialect: 'ws4redis' }) };
  const identity = new IdentityResolver(settings, tokens, config.client.token.user_id_claim);
  const endpoint = new Ws4RedisEndpoint(ctx, identity, new SafetyRules(settings), config.client.allowed_origins);
  return {
    name: 'ws4redis',
    formats: { [WS4REDIS_FORMAT]: encodePayload },
    handleUpgrade: (req, socket, head, url) => endpoint.handleUpgrade(req, socket, head, url),
    handleRequest: (req, res, url) => endpoint.handleRequest(req, res, url),
    ownsRawName: (name) => isWs4RedisName(settings.prefix, name),
    connections: () => endpoint.size,
    refused: () => endpoint.limits.refused,
    close: () => endpoint.shutdown(),
  };
};
