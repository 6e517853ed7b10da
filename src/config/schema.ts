// The one configuration schema (the channel namespace options in namespaces.ts, a proxy's keys in proxies.ts). Every key, its default and its meaning are listed in
// docs/configuration.md (webdis.* in docs/webdis.md, ws4redis.* in docs/ws4redis.md); keep them in step. Default: nothing is open that the config did not open.
import { createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { duration } from './duration.js';
import { DEFAULT_PROXY_NAME, flag, linearRegex, namespaceOptionsSchema, namespaceSchema, publicationDataFormat, type NamespaceOptions } from './namespaces.js';
import { checkProxyChoice, headerName, headerNames, namedProxySchema, proxySchema } from './proxies.js';

export { DEFAULT_PROXY_NAME, type NamespaceOptions } from './namespaces.js';

/** The longest delay Node's timers keep (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A duration a timer waits (how often Webdis and ws4redis sockets are pinged, ...): at most what Node's timers keep. */
const timerDuration = (fallback: string) =>
  duration()
    .prefault(fallback)
    .refine((ms) => ms <= MAX_TIMER_MS, { message: 'must be at most 24 days (2147483647 ms, the longest timer Node keeps)' });

function checkTokenKeys(
  t: { rsa_public_key: string; ecdsa_public_key: string; jwks_public_endpoint: string; audience: string; audience_regex: string; issuer: string; issuer_regex: string },
  ctx: z.RefinementCtx,
): void {
  for (const claim of ['audience', 'issuer'] as const) {
    if (t[claim] && t[`${claim}_regex`]) ctx.addIssue({ code: 'custom', path: [`${claim}_regex`], message: `set ${claim} or ${claim}_regex, not both` });
  }
  for (const [key, type] of [['rsa_public_key', 'rsa'], ['ecdsa_public_key', 'ec']] as const) {
    if (!t[key]) continue;
    try {
      const k = createPublicKey(t[key]);
      if (k.asymmetricKeyType !== type) ctx.addIssue({ code: 'custom', path: [key], message: `expected a PEM ${type.toUpperCase()} public key, got a ${k.asymmetricKeyType} key` });
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [key], message: `not a readable PEM public key (${(err as Error).message})` });
    }
  }
  if (t.jwks_public_endpoint && !/^https?:\/\/\S+$/.test(t.jwks_public_endpoint)) {
    ctx.addIssue({ code: 'custom', path: ['jwks_public_endpoint'], message: 'must be an http(s) URL' });
  }
}

const tokenSchema = z
  .object({
    hmac_secret_key: z.string().default(''),
    rsa_public_key: z.string().default(''),
    ecdsa_public_key: z.string().default(''),
    jwks_public_endpoint: z.string().default(''),
    audience: z.string().default(''),
    issuer: z.string().default(''),
    // Centrifugo's: the claim must match the expression (one of `aud`'s values); not with audience / issuer.
    audience_regex: linearRegex(),
    issuer_regex: linearRegex(),
    user_id_claim: z.string().default('sub'),
  });

/** Token verification settings (keys, audience, issuer). */
export type TokenConfig = z.output<typeof tokenSchema>;

const defaults = <T extends z.ZodType>(schema: T) => schema.prefault({} as never);

/** Refuses a second namespace of the same name (`what`: how the message names them). */
function uniqueNames(namespaces: ReadonlyArray<{ name: string }>, ctx: z.RefinementCtx, what: string): void {
  const seen = new Set<string>();
  namespaces.forEach((ns, i) => {
    if (seen.has(ns.name)) ctx.addIssue({ code: 'custom', path: ['namespaces', i, 'name'], message: `duplicate ${what} "${ns.name}"` });
    seen.add(ns.name);
  });
}

/** Which proxy answers the RPC methods of a namespace (Centrifugo v6's `rpc` options). */
const rpcOptionsShape = { proxy_enabled: flag(), proxy_name: z.string().default(DEFAULT_PROXY_NAME) };
/** Centrifugo v6's `rpc` section: RPC methods by namespace (`ns:method`), each namespace's proxy, and the ping extension. */
const rpcSchema = z
  .object({
    // The default RPC proxy (`proxy_name` "default").
    proxy: defaults(proxySchema),
    without_namespace: defaults(z.object(rpcOptionsShape).strict()),
    namespaces: z
      .array(z.object({ name: z.string().regex(/^[-a-zA-Z0-9_.]+$/, 'letters, digits, "-", "_" and "." only'), ...rpcOptionsShape }).strict())
      .default([]),
    namespace_boundary: z.string().default(':'),
    // An RPC answered by Herald itself with an empty result (a client measuring its round trip).
    ping: defaults(z.object({ enabled: flag(), method: z.string().min(1).default('ping') }).strict()),
  })
  .strict()
  .superRefine((rpc, ctx) => uniqueNames(rpc.namespaces, ctx, 'RPC namespace'));

/** Why a Webdis ACL `ip` is not an address or CIDR, or undefined when it is one. */
function subnetProblem(spec: string): string | undefined {
  const [address, bits, extra] = spec.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || extra !== undefined) return `expected an IP address or CIDR such as "10.0.0.0/8", got ${JSON.stringify(spec)}`;
  if (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))) return `bad prefix length in ${JSON.stringify(spec)}`;
  return undefined;
}

const webdisAclRuleSchema = z
  .object({
    ip: z
      .string()
      .optional()
      .superRefine((ip, ctx) => {
        const problem = ip === undefined ? undefined : subnetProblem(ip);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    http_basic_auth: z.string().regex(/^[^:]*:/, 'expected "user:password"').optional(),
    enabled: z.array(z.string().min(1)).default([]),
    disabled: z.array(z.string().min(1)).default([]),
  })
  .strict();

/** The eight ws4redis channel flags a `/ws/<facility>?…` URL may carry (`echo` is not one of them). */
export const WS4REDIS_FLAGS = [
  'subscribe-broadcast',
  'subscribe-user',
  'subscribe-group',
  'subscribe-session',
  'publish-broadcast',
  'publish-user',
  'publish-group',
  'publish-session',
] as const;

/** One ws4redis channel flag. */
export type Ws4RedisFlag = (typeof WS4REDIS_FLAGS)[number];

const ws4redisFlags = z.array(z.enum(WS4REDIS_FLAGS));

const ws4redisSchema = z
  .object({
    enabled: flag(),
    // ws4redis WEBSOCKET_URL: the facility is what follows it in the path.
    path_prefix: z.string().regex(/^\/(.*\/)?$/, 'must start and end with "/", e.g. "/ws/"').default('/ws/'),
    // ws4redis WS4REDIS_PREFIX: channel and key names start with "<prefix>:" when it is set.
    prefix: z.string().default(''),
    // ws4redis WS4REDIS_EXPIRE: how long a message published from a browser stays persisted; 0 = not stored.
    expire: duration().prefault(3600),
    // ws4redis WS4REDIS_HEARTBEAT: "" = none.
    heartbeat: z.string().default(''),
    // ws4redis WS4REDIS_ALLOWED_CHANNELS, as a list: the flags a connection may use; others are dropped.
    allowed_channels: ws4redisFlags.default(['subscribe-broadcast']),
    refuse_anonymous: flag(),
    facilities: z
      .array(
        z
          .object({
            facility: z.string().min(1),
            allowed_channels: ws4redisFlags,
            refuse_anonymous: flag(),
          })
          .strict(),
      )
      .default([]),
    identity_hook: defaults(
      z
        .object({
          url: z.string().regex(/^(https?:\/\/\S+)?$/, 'must be an http(s) URL').default(''),
          timeout: duration().prefault('2s'),
        })
        .strict(),
    ),
    token: defaults(
      z
        .object({
          query_param: z.string().default('token'),
          cookie: z.string().default('herald_token'),
        })
        .strict(),
    ),
    max_message_size: z.number().int().min(1024).default(65536),
    queue_max_size: z.number().int().min(1024).default(1_048_576),
    connection_limit: z.number().int().min(0).default(0),
    connection_rate_limit: z.number().int().min(0).default(0),
    // uWSGI, which ws4redis runs under in production, pings every 30 s.
    ping_interval: timerDuration('25s'),
  })
  .strict()
  .superRefine((w, ctx) => {
    if (w.identity_hook.url && w.identity_hook.timeout <= 0) {
      ctx.addIssue({ code: 'custom', path: ['identity_hook', 'timeout'], message: 'must be > 0 when identity_hook.url is set' });
    }
  });

/** The ws4redis dialect's settings, parsed (durations in milliseconds). */
export type Ws4RedisConfig = z.output<typeof ws4redisSchema>;

/** The whole configuration. */
export const configSchema = z
  .object({
    /** Free text for humans (JSON has no comments). */
    $comment: z.string().optional(),
    address: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(8000),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    shutdown_timeout: duration().prefault('5s'),
    engine: defaults(
      z
        .object({
          type: z.enum(['memory', 'redis']).default('memory'),
          history_meta_ttl: duration().prefault('720h'),
          idempotent_result_ttl: duration().prefault('5m'),
          presence_ttl: duration().prefault('60s'),
          redis: defaults(
            z
              .object({
                url: z.string().default(''),
                cluster: z.array(z.string()).default([]),
                prefix: z.string().min(1).default('herald'),
                command_timeout: duration().prefault('5s'),
                sharded_pubsub: flag(true),
              })
              .strict(),
          ),
        })
        .strict()
        .superRefine((engine, ctx) => {
          if (engine.type !== 'redis') return;
          const { url, cluster } = engine.redis;
          if (!url && cluster.length === 0) {
            ctx.addIssue({ code: 'custom', path: ['redis', 'url'], message: 'set a Redis URL (redis://host:port) or engine.redis.cluster seed nodes for engine.type "redis"' });
          }
          if (url && !/^rediss?:\/\//.test(url)) {
            ctx.addIssue({ code: 'custom', path: ['redis', 'url'], message: `must start with redis:// or rediss://, got ${JSON.stringify(url)}` });
          }
          cluster.forEach((seed, i) => {
            if (!/^(rediss?:\/\/.+|[^:/\s]+:\d+)$/.test(seed)) {
              ctx.addIssue({ code: 'custom', path: ['redis', 'cluster', i], message: `expected "host:port" or a redis:// URL, got ${JSON.stringify(seed)}` });
            }
          });
        }),
    ),
    client: defaults(
      z
        .object({
          websocket_path: z.string().startsWith('/').default('/connection/websocket'),
          http_stream: defaults(
            z.object({ enabled: flag(), path: z.string().startsWith('/').default('/connection/http_stream') }).strict(),
          ),
          sse: defaults(z.object({ enabled: flag(), path: z.string().startsWith('/').default('/connection/sse') }).strict()),
          emulation_path: z.string().startsWith('/').default('/emulation'),
          proxy: defaults(z.object({ connect: defaults(proxySchema), refresh: defaults(proxySchema), rpc: defaults(proxySchema) }).strict()),
          token: defaults(tokenSchema.strict().superRefine(checkTokenKeys)),
          subscription_token: defaults(
            z.object({ enabled: flag() }).extend(tokenSchema.shape).strict().superRefine(checkTokenKeys),
          ),
          allow_anonymous_connect_without_token: flag(),
          // Centrifugo's development mode: anonymous connects, and every client command allowed (logged at start).
          insecure: flag(),
          // Centrifugo v6's: the user a gateway in front authenticated, from this request header ('': off).
          user_id_http_header: z.union([z.literal(''), headerName]).default(''),
          disallow_anonymous_connection_tokens: flag(),
          connect_include_server_time: flag(),
          allowed_origins: z.array(z.string()).default([]),
          ping_interval: duration().prefault('25s'),
          pong_timeout: duration().prefault('8s'),
          stale_close_delay: duration().prefault('10s'),
          expired_close_delay: duration().prefault('25s'),
          // Centrifugo's separate grace for subscriptions; absent: expired_close_delay.
          expired_sub_close_delay: duration().optional(),
          max_message_size: z.number().int().min(1024).default(65536),
          queue_max_size: z.number().int().min(1024).default(1_048_576),
          channel_limit: z.number().int().min(1).default(128),
          connection_limit: z.number().int().min(0).default(0),
          connection_rate_limit: z.number().int().min(0).default(0),
          user_connection_limit: z.number().int().min(0).default(0),
          channel_max_length: z.number().int().min(1).default(255),
          history_max_publication_limit: z.number().int().min(1).default(300),
          recovery_max_publication_limit: z.number().int().min(1).default(300),
          presence_update_interval: duration().prefault('27s'),
          // Positioned subscriptions are checked against their streams' tops this often (Redis engine;
          // 0: Centrifugo's default, 40s).
          channel_position_check_delay: timerDuration('40s').transform((ms) => (ms === 0 ? 40_000 : ms)),
          // A positioned subscription sent a publication older than this resubscribes and recovers (0: never).
          channel_position_max_time_lag: duration().prefault('0s'),
          // Every connection with a user is subscribed server-side to that user's channel (#user).
          subscribe_to_user_personal_channel: defaults(
            z.object({ enabled: flag(), personal_channel_namespace: z.string().default(''), single_connection: flag() }).strict(),
          ),
        })
        .strict(),
    ),
    channel: defaults(
      z
        .object({
          without_namespace: defaults(namespaceOptionsSchema),
          namespaces: z.array(namespaceSchema).default([]),
          proxy: defaults(z.object({ subscribe: defaults(proxySchema), publish: defaults(proxySchema), sub_refresh: defaults(proxySchema) }).strict()),
          // Centrifugo v6's place for engine.history_meta_ttl; when given, it wins.
          history_meta_ttl: duration().optional(),
          // How channel names are read (Centrifugo's defaults): '' turns each off.
          private_prefix: z.string().default('$'),
          namespace_boundary: z.string().default(':'),
          user_boundary: z.string().default('#'),
          user_separator: z.string().default(','),
          // Centrifugo v6's place for client.channel_max_length; when given, it wins.
          max_length: z.number().int().min(1).optional(),
          // The namespaces' publication_data_format where they leave it ''.
          publication_data_format: publicationDataFormat,
        })
        .strict()
        .superRefine((channel, ctx) => {
          uniqueNames(channel.namespaces, ctx, 'namespace');
          const boundary = channel.namespace_boundary;
          channel.namespaces.forEach((ns, i) => {
            if (boundary && ns.name.includes(boundary)) {
              ctx.addIssue({ code: 'custom', path: ['namespaces', i, 'name'], message: `must not contain namespace_boundary "${boundary}"` });
            }
          });
        }),
    ),
    http_api: defaults(
      z
        .object({
          key: z.string().default(''),
          insecure: flag(),
          error_mode: z.enum(['default', 'transport']).default('default'),
          max_body_size: z.number().int().min(1024).default(10_485_760),
        })
        .strict(),
    ),
    metrics: defaults(
      z
        .object({
          enabled: flag(),
          path: z.string().startsWith('/').default('/metrics'),
        })
        .strict(),
    ),
    demo: defaults(
      z
        .object({
          enabled: flag(),
          dashboard_max_interval: duration().prefault('1s'),
          job_step_delay: duration().prefault('2s'),
        })
        .strict(),
    ),
    webdis: defaults(
      z
        .object({
          enabled: flag(),
          listen: flag(true),
          address: z.string().default(''),
          port: z.number().int().min(0).max(65535).default(7379),
          path_prefix: z
            .string()
            .regex(/^(\/[^?#\s]*[^/?#\s])?$/, 'empty, or a path such as "/webdis" (starts with "/", does not end with "/")')
            .default(''),
          websockets: flag(true),
          // Replies from Redis are never active content (a script) on Herald's origin: off only to serve pages from Redis.
          sandbox: flag(true),
          acl: z.array(webdisAclRuleSchema).default([]),
          max_message_size: z.number().int().min(1024).default(1_048_576),
          queue_max_size: z.number().int().min(1024).default(4_194_304),
          http_max_body_size: z.number().int().min(1024).default(10_485_760),
          redis_pool_size: z.number().int().min(1).max(64).default(4),
          connection_limit: z.number().int().min(0).default(0),
          connection_rate_limit: z.number().int().min(0).default(0),
          max_node_patterns: z.number().int().min(0).default(10_000),
          // Webdis sends no pings, and hand-written Webdis clients may not answer them: off unless set.
          ping_interval: timerDuration('0'),
        })
        .strict()
        .superRefine((webdis, ctx) => {
          if (webdis.enabled && !webdis.listen && !webdis.path_prefix) {
            ctx.addIssue({ code: 'custom', path: ['path_prefix'], message: 'set a path prefix (e.g. "/webdis") when webdis.listen is false, or nothing serves Webdis' });
          }
        }),
    ),
    ws4redis: defaults(ws4redisSchema),
    proxies: z.array(namedProxySchema).default([]),
    rpc: defaults(rpcSchema),
  })
  .strict()
  .superRefine((config, ctx) => {
    // Named proxies: unique names; a namespace that hands its decisions to a proxy needs that proxy.
    const named = new Map<string, (typeof config.proxies)[number]>();
    config.proxies.forEach((p, i) => {
      if (named.has(p.name) || p.name === DEFAULT_PROXY_NAME) ctx.addIssue({ code: 'custom', path: ['proxies', i, 'name'], message: `"${p.name}" is taken` });
      named.set(p.name, p);
    });
    const all: Array<[NamespaceOptions, Array<string | number>]> = [
      [config.channel.without_namespace, ['channel', 'without_namespace']],
      ...config.channel.namespaces.map((ns, i): [NamespaceOptions, Array<string | number>] => [ns, ['channel', 'namespaces', i]]),
    ];
    for (const [ns, path] of all) {
      for (const which of ['subscribe', 'publish', 'sub_refresh'] as const) {
        if (!ns[`${which}_proxy_enabled`]) continue;
        const choice = { name: ns[`${which}_proxy_name`], defaultEndpoint: config.channel.proxy[which].endpoint, defaultKey: `channel.proxy.${which}.endpoint` };
        checkProxyChoice(ctx, named, choice, path, `${which}_proxy_enabled`, `${which}_proxy_name`);
      }
    }
    const personal = config.client.subscribe_to_user_personal_channel;
    if (personal.enabled && personal.personal_channel_namespace && config.channel.namespace_boundary === '') {
      ctx.addIssue({
        code: 'custom',
        path: ['client', 'subscribe_to_user_personal_channel', 'personal_channel_namespace'],
        message: 'needs channel.namespace_boundary (with none, no channel is in a namespace)',
      });
    } else if (personal.enabled && personal.personal_channel_namespace && !config.channel.namespaces.some((ns) => ns.name === personal.personal_channel_namespace)) {
      ctx.addIssue({
        code: 'custom',
        path: ['client', 'subscribe_to_user_personal_channel', 'personal_channel_namespace'],
        message: `no channel namespace "${personal.personal_channel_namespace}" in channel.namespaces`,
      });
    }
    // RPC namespaces that hand their methods to a proxy need that proxy; Herald's earlier
    // client.proxy.rpc (every method to one backend) is not mixed with them.
    const { rpc } = config;
    const rpcOptions: Array<[{ proxy_enabled: boolean; proxy_name: string }, Array<string | number>]> = [
      [rpc.without_namespace, ['rpc', 'without_namespace']],
      ...rpc.namespaces.map((ns, i): [typeof ns, Array<string | number>] => [ns, ['rpc', 'namespaces', i]]),
    ];
    for (const [ns, path] of rpcOptions) {
      if (!ns.proxy_enabled) continue;
      if (config.client.proxy.rpc.endpoint) {
        ctx.addIssue({ code: 'custom', path: ['client', 'proxy', 'rpc', 'endpoint'], message: 'sends every RPC to one backend: leave it empty when rpc namespaces enable proxies (set rpc.proxy instead)' });
        break;
      }
      const choice = { name: ns.proxy_name, defaultEndpoint: rpc.proxy.endpoint, defaultKey: 'rpc.proxy.endpoint' };
      checkProxyChoice(ctx, named, choice, path, 'proxy_enabled', 'proxy_name');
    }
    // The demo pages name their channels with Centrifugo's default boundaries.
    if (config.demo.enabled && config.channel.namespace_boundary !== ':') {
      ctx.addIssue({ code: 'custom', path: ['demo', 'enabled'], message: 'the demo pages name channels with channel.namespace_boundary ":": leave it as it is, or the demo off' });
    }
    // The demo publishes to `jobs:<id>` and `dashboard:variable`, and its pages subscribe there without a
    // token: without those namespaces every demo publish fails (and is logged) and the pages stay empty.
    if (config.demo.enabled) {
      const names = new Set(config.channel.namespaces.map((ns) => ns.name));
      const missing = ['jobs', 'dashboard'].filter((name) => !names.has(name));
      if (missing.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['demo', 'enabled'],
          message: `the demo publishes to the namespaces "jobs" and "dashboard" (missing: ${missing.join(', ')}): run it with herald.demo.json (npm start), which has them, or add them`,
        });
      }
    }
    // A client's presence entry is added again every presence_update_interval: it must outlive that.
    if (config.client.presence_update_interval <= 0) {
      ctx.addIssue({ code: 'custom', path: ['client', 'presence_update_interval'], message: 'must be > 0' });
    } else if (config.client.presence_update_interval > MAX_TIMER_MS) {
      ctx.addIssue({ code: 'custom', path: ['client', 'presence_update_interval'], message: 'must be at most 24 days (2147483647 ms, the longest timer Node keeps)' });
    } else if (config.engine.presence_ttl <= config.client.presence_update_interval) {
      ctx.addIssue({
        code: 'custom',
        path: ['engine', 'presence_ttl'],
        message: `must be longer than client.presence_update_interval (${config.client.presence_update_interval / 1000}s), or present clients drop out between updates`,
      });
    }
    // A proxy call must be able to finish: after 0 it never can, and a connect still waiting at
    // stale_close_delay is closed as stale (terminal) instead of getting a temporary error.
    const proxies = [
      ['client', 'connect', config.client.proxy.connect],
      ['client', 'refresh', config.client.proxy.refresh],
      ['client', 'rpc', config.client.proxy.rpc],
      ['rpc', 'rpc', config.rpc.proxy],
      ['channel', 'subscribe', config.channel.proxy.subscribe],
      ['channel', 'publish', config.channel.proxy.publish],
      ['channel', 'sub_refresh', config.channel.proxy.sub_refresh],
    ] as const;
    for (const [section, which, { timeout, endpoint }] of [...proxies, ...config.proxies.map((p, i) => ['proxies', i, p] as const)]) {
      if (!endpoint) continue;
      const stale = config.client.stale_close_delay;
      if (timeout <= 0 || (which === 'connect' ? timeout >= stale : timeout > 60_000)) {
        const why = which === 'connect' ? `shorter than client.stale_close_delay (${stale / 1000}s)` : 'at most 60s';
        ctx.addIssue({ code: 'custom', path: section === 'proxies' ? [section, which, 'timeout'] : section === 'rpc' ? ['rpc', 'proxy', 'timeout'] : [section, 'proxy', which, 'timeout'], message: `must be > 0 and ${why}` });
      }
    }
    // ws4redis's channels and stored messages are raw Redis names: under the engine's prefix followed
    // by "." or "{" they would be the engine's own names, which it refuses to raw use.
    const names = config.ws4redis.prefix ? `${config.ws4redis.prefix}:` : '';
    const engine = config.engine.redis.prefix;
    const next = names.charAt(engine.length);
    if (config.ws4redis.enabled && config.engine.type === 'redis' && names.startsWith(engine) && (next === '.' || next === '{')) {
      ctx.addIssue({ code: 'custom', path: ['ws4redis', 'prefix'], message: `must not start with engine.redis.prefix followed by "." or "{" ("${engine}"): those names are Herald's own` });
    }
  });

/** The parsed, validated configuration (durations in milliseconds). Frozen after start. */
export type HeraldConfig = z.output<typeof configSchema>;
/** The configuration as written in a file or passed to createHerald (every key optional). */
export type HeraldConfigInput = z.input<typeof configSchema>;
