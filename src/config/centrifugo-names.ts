// Centrifugo v6's names for the settings Herald has under its own: a Centrifugo configuration file's
// `http_server`, `log`, `prometheus`, `websocket`, `sse`, `http_stream`, `emulation` sections and
// `engine.redis.address` are read as Herald's `address`/`port`, `log_level`, `metrics`, `client.*`
// transport keys and `engine.redis.url`. Applied to each source (the file,
// a program's values) before sources are merged, so an environment variable or flag still wins over
// what the file said under either name. What Herald does not have is refused by name, never ignored.

/** A JSON object of a configuration source. */
export type Plain = Record<string, unknown>;

/** True for a JSON object (not an array, not null). */
export const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One Centrifugo key read as a Herald key: error messages name the key as it was written. */
export interface Renamed {
  /** Herald's key path, e.g. `port`. */
  readonly herald: string;
  /** The key path in the source, e.g. `http_server.port`. */
  readonly written: string;
}

/** The outcome for one source: the source with Herald's names, the keys renamed, and what was refused. */
export interface Translated {
  readonly values: Plain;
  readonly renamed: Renamed[];
  /** `key: why` lines, each a key the source sets that cannot be taken. */
  readonly problems: string[];
}

/** Centrifugo's log levels, by Herald's name where it differs. */
const LOG_LEVELS: Readonly<Record<string, string>> = { none: 'silent' };

/** Rewrites Centrifugo v6 names in one configuration source (the input is not changed). */
export function fromCentrifugoNames(source: Plain): Translated {
  const out: Plain = { ...source };
  const renamed: Renamed[] = [];
  const problems: string[] = [];

  /** Moves `value` to Herald's `path` unless the same source set it there too. */
  const move = (written: string, herald: string, value: unknown) => {
    const path = herald.split('.');
    let node = out;
    for (const key of path.slice(0, -1)) {
      node[key] = isPlain(node[key]) ? { ...(node[key] as Plain) } : {};
      node = node[key] as Plain;
    }
    const leaf = path[path.length - 1]!;
    if (node[leaf] !== undefined) {
      problems.push(`${written}: Herald's ${herald} is set too: set one of them`);
      return;
    }
    node[leaf] = value;
    renamed.push({ herald, written });
  };
  /** Takes a Centrifugo section apart: each of `keys` is handed to `take`, any other key refused. */
  const section = (name: string, keys: Readonly<Record<string, (value: unknown) => void>>, why: string) => {
    const value = out[name];
    if (value === undefined) return;
    delete out[name];
    if (!isPlain(value)) {
      problems.push(`${name}: expected an object (Centrifugo v6's section)`);
      return;
    }
    for (const [key, v] of Object.entries(value)) {
      const take = keys[key];
      if (take) take(v);
      else problems.push(`${name}.${key}: ${why}`);
    }
  };

  section(
    'http_server',
    { address: (v) => move('http_server.address', 'address', v), port: (v) => move('http_server.port', 'port', v) },
    'not a Herald setting (Herald reads address and port of http_server; put TLS in a proxy in front)',
  );
  section(
    'log',
    { level: (v) => move('log.level', 'log_level', typeof v === 'string' ? (LOG_LEVELS[v] ?? v) : v) },
    'not a Herald setting (Herald writes its JSON log lines to stdout)',
  );
  section('prometheus', { enabled: (v) => move('prometheus.enabled', 'metrics.enabled', v) }, 'not a Herald setting (see metrics)');
  /** A Centrifugo switch Herald has no setting for: its value in Herald is `herald`, and only that is taken. */
  const fixed = (written: string, herald: unknown, meaning: string) => (v: unknown) => {
    if (v !== herald) problems.push(`${written}: ${meaning}`);
  };
  section(
    'websocket',
    {
      handler_prefix: (v) => move('websocket.handler_prefix', 'client.websocket_path', v),
      message_size_limit: (v) => move('websocket.message_size_limit', 'client.max_message_size', v),
      disabled: fixed('websocket.disabled', false, 'Herald always serves the WebSocket transport'),
      compression: fixed('websocket.compression', false, 'Herald does not compress WebSocket frames'),
    },
    'not a Herald setting',
  );
  for (const transport of ['sse', 'http_stream'] as const) {
    section(
      transport,
      {
        enabled: (v) => move(`${transport}.enabled`, `client.${transport}.enabled`, v),
        handler_prefix: (v) => move(`${transport}.handler_prefix`, `client.${transport}.path`, v),
      },
      'not a Herald setting (a request body is limited by client.max_message_size)',
    );
  }
  section('emulation', { handler_prefix: (v) => move('emulation.handler_prefix', 'client.emulation_path', v) }, 'not a Herald setting (a request body is limited by client.max_message_size)');

  const engine = out.engine;
  if (isPlain(engine) && isPlain(engine.redis)) {
    const redis: Plain = { ...engine.redis };
    out.engine = { ...engine, redis };
    translateRedis(redis, move, problems);
  }
  return { values: out, renamed, problems };
}

/**
 * `engine.redis`'s Centrifugo keys (`address`, `cluster_address`, `user`, `password`, `db`,
 * `io_timeout`, `presence_ttl`): taken out of `redis` (the source's, copied), and moved to Herald's.
 */
function translateRedis(redis: Plain, move: (written: string, herald: string, value: unknown) => void, problems: string[]): void {
  const take = (key: string): unknown => {
    const v = redis[key];
    delete redis[key];
    return v;
  };
  const address = take('address');
  const clusterAddress = take('cluster_address');
  const user = take('user');
  const password = take('password');
  const db = take('db');
  const ioTimeout = take('io_timeout');
  const presenceTtl = take('presence_ttl');
  // Every key is taken out before any is moved: moving copies the objects on its path.
  const credentials = { user, password };
  for (const [key, v] of Object.entries(credentials)) {
    if (v !== undefined && typeof v !== 'string') problems.push(`engine.redis.${key}: expected a string`);
  }
  if (db !== undefined && !(Number.isInteger(db) && (db as number) >= 0)) problems.push('engine.redis.db: expected an integer ≥ 0');

  if (address !== undefined) {
    const list = Array.isArray(address) ? address : [address];
    if (list.length !== 1 || typeof list[0] !== 'string') {
      problems.push(
        'engine.redis.address: give one address: Herald uses one Redis, or a Redis Cluster (cluster_address), and does not spread channels over several Redis servers',
      );
    } else if (clusterAddress !== undefined) {
      problems.push('engine.redis.address: set address (one Redis) or cluster_address (a Redis Cluster), not both');
    } else {
      move('engine.redis.address', 'engine.redis.url', redisUrl(list[0], user, password, db));
    }
  }
  if (clusterAddress !== undefined) {
    const list = Array.isArray(clusterAddress) ? clusterAddress : [clusterAddress];
    if (list.length === 0 || !list.every((a) => typeof a === 'string')) {
      problems.push('engine.redis.cluster_address: expected a list of "host:port" seed nodes');
    } else if (db !== undefined && db !== 0) {
      problems.push('engine.redis.db: a Redis Cluster has database 0 only');
    } else {
      move('engine.redis.cluster_address', 'engine.redis.cluster', list.map((a: string) => redisUrl(a, user, password, undefined)));
    }
  }
  if (address === undefined && clusterAddress === undefined) {
    for (const [key, v] of Object.entries({ ...credentials, db })) {
      if (v !== undefined) problems.push(`engine.redis.${key}: goes with engine.redis.address or cluster_address (or put it in engine.redis.url)`);
    }
  }
  if (ioTimeout !== undefined) move('engine.redis.io_timeout', 'engine.redis.command_timeout', ioTimeout);
  if (presenceTtl !== undefined) move('engine.redis.presence_ttl', 'engine.presence_ttl', presenceTtl);
}

/**
 * A Centrifugo Redis address (`redis://…`, `rediss://…` or `host:port`) as a URL, with the separately
 * given user, password and database when the address has none of its own. Anything else is passed on
 * as it is, for the schema to refuse with its own message.
 */
function redisUrl(address: string, user: unknown, password: unknown, db: unknown): string {
  const withScheme = /^rediss?:\/\//.test(address) ? address : /^[^:/\s]+:\d+$/.test(address) ? `redis://${address}` : undefined;
  if (withScheme === undefined) return address;
  const url = new URL(withScheme);
  if (typeof user === 'string' && user && !url.username) url.username = encodeURIComponent(user);
  if (typeof password === 'string' && password && !url.password) url.password = encodeURIComponent(password);
  if (typeof db === 'number' && db > 0 && (url.pathname === '' || url.pathname === '/')) url.pathname = `/${db}`;
  const text = url.toString();
  // URL adds a "/" after the host; the address as written had none.
  return url.pathname === '/' && !withScheme.endsWith('/') ? text.replace(/\/$/, '') : text;
}
