// Configuration: one schema, file < env < flags, messages that name the key, frozen result; and the CLI.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { listeningUrl } from '../../src/server/listen.js';
import { configKeyPaths, envName } from '../../src/config/load.js';
import { createHerald, HeraldError, loadConfig } from '../../src/index.js';
import { configError, until } from '../helpers/herald.js';
import { freePort } from '../helpers/redis.js';
import { tempFile } from '../helpers/temp.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'herald.js');

test('defaults are safe: nothing open', () => {
  const c = loadConfig();
  assert.equal(c.port, 8000);
  assert.equal(c.client.allow_anonymous_connect_without_token, false);
  assert.equal(c.http_api.key, '');
  assert.equal(c.http_api.insecure, false);
  assert.equal(c.channel.without_namespace.allow_subscribe_for_client, false);
  assert.equal(c.channel.without_namespace.allow_publish_for_client, false);
  assert.equal(c.channel.without_namespace.allow_history_for_client, false);
  assert.deepEqual(c.client.allowed_origins, []);
  assert.equal(c.demo.enabled, false);
});

test("a node's config can be read, not changed: neither its keys nor the property", () => {
  const herald = createHerald({ config: loadConfig({ values: { log_level: 'silent' } }) });
  assert.throws(() => {
    (herald.config as { port: number }).port = 1;
  }, TypeError);
  assert.throws(() => {
    (herald as { config: unknown }).config = {};
  }, TypeError);
  assert.equal(herald.config.port, 8000);
});

test('durations accept seconds and unit strings; the result is frozen', () => {
  const c = loadConfig({ values: { client: { ping_interval: '1m30s', pong_timeout: 3 } } });
  assert.equal(c.client.ping_interval, 90_000);
  assert.equal(c.client.pong_timeout, 3000);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.client));
  assert.throws(() => {
    (c as { port: number }).port = 1;
  }, TypeError);
});

test('errors name the key and what is wrong', () => {
  assert.match(configError(() => loadConfig({ values: { prot: 1 } as never })), /unknown key\(s\) "prot"/);
  assert.match(configError(() => loadConfig({ values: { port: 'x' as never } })), /port: .*number/i);
  assert.match(configError(() => loadConfig({ values: { port: 70000 } })), /port:/);
  assert.match(configError(() => loadConfig({ values: { client: { ping_interval: 'soon' } } })), /client\.ping_interval: expected a duration/);
  assert.match(
    configError(() => loadConfig({ values: { channel: { namespaces: [{ name: 'a', history_size: 10 }] } } })),
    /channel\.namespaces\.0\.history_ttl: must be set/,
  );
  assert.match(
    configError(() => loadConfig({ values: { channel: { namespaces: [{ name: 'a' }, { name: 'a' }] } } })),
    /duplicate namespace "a"/,
  );
  assert.match(configError(() => loadConfig({ values: { channel: { namespaces: [{ name: 'a', bogus: true }] } } as never })), /bogus/);
  assert.match(configError(() => loadConfig({ values: { channel: { namespaces: [{ name: 'a:b' }] } } })), /namespaces\.0\.name/);
  assert.match(
    configError(() => loadConfig({ values: { channel: { namespaces: [{ name: 'a', history_size: 1, history_ttl: '60s', history_meta_ttl: '30s' }] } } })),
    /channel\.namespaces\.0\.history_meta_ttl: must be at least history_ttl/,
  );
  assert.match(
    configError(() => loadConfig({ values: { channel: { namespaces: [{ name: 'a', allowed_delta_types: ['xdelta'] }] } } as never })),
    /channel\.namespaces\.0\.allowed_delta_types\.0: .*fossil/,
  );
});

test('file < environment < overrides', () => {
  const file = tempFile('h.json', JSON.stringify({ port: 1111, client: { ping_interval: '5s' }, http_api: { key: 'file' } }));
  const env = { HERALD_PORT: '2222', HERALD_HTTP_API_KEY: 'env', HERALD_CLIENT_ALLOWED_ORIGINS: '["https://a.example"]' };
  const c = loadConfig({ file, env, overrides: { port: 3333 } });
  assert.equal(c.port, 3333);
  assert.equal(c.http_api.key, 'env');
  assert.equal(c.client.ping_interval, 5000);
  assert.deepEqual(c.client.allowed_origins, ['https://a.example']);
});

test('text keys stay text from the environment and --set (a numeric API key is not turned into a number)', () => {
  const c = loadConfig({ env: { HERALD_HTTP_API_KEY: '123456', HERALD_CLIENT_TOKEN_HMAC_SECRET_KEY: 'true' } });
  assert.equal(c.http_api.key, '123456');
  assert.equal(c.client.token.hmac_secret_key, 'true');
});

test('token keys are checked at load: unreadable PEM, wrong key type, bad JWKS URL', () => {
  assert.match(configError(() => loadConfig({ values: { client: { token: { rsa_public_key: 'nope' } } } })), /client\.token\.rsa_public_key: not a readable PEM/);
  assert.match(configError(() => loadConfig({ values: { client: { token: { jwks_public_endpoint: 'ftp://x' } } } })), /jwks_public_endpoint: must be an http/);
  assert.match(
    configError(() => loadConfig({ values: { channel: { namespaces: [{ name: 'p', force_positioning: true }] } } })),
    /history_size: must be > 0 for positioning/,
  );
});

test('a bad value from the environment or a flag is named with where it came from', () => {
  assert.match(configError(() => loadConfig({ env: { HERALD_PORT: 'abc' } })), /port \(from the environment, HERALD_PORT\): .*expected number/);
  assert.match(configError(() => loadConfig({ env: { HERALD_CLIENT_ALLOWED_ORIGINS: 'https://x' } })), /HERALD_CLIENT_ALLOWED_ORIGINS\): .*expected array.*write it as JSON/);
  assert.match(configError(() => loadConfig({ overrides: { port: 'abc' } })), /port \(from the command line\): /);
});

test('an unknown HERALD_ variable is an error, not silently ignored', () => {
  assert.match(configError(() => loadConfig({ env: { HERALD_PROT: '1' } })), /unknown environment variable HERALD_PROT/);
});

test('every key has an environment variable name', () => {
  const paths = configKeyPaths();
  assert.ok(paths.includes('client.token.hmac_secret_key'));
  assert.equal(envName('client.token.hmac_secret_key'), 'HERALD_CLIENT_TOKEN_HMAC_SECRET_KEY');
  assert.ok(paths.includes('channel.namespaces'));
});

test('keys without a default (optional ones, Centrifugo v6 aliases) and object-valued keys have environment variables too', () => {
  const c = loadConfig({
    env: {
      HERALD_CLIENT_EXPIRED_SUB_CLOSE_DELAY: '5s',
      HERALD_CHANNEL_MAX_LENGTH: '100',
      HERALD_CHANNEL_HISTORY_META_TTL: '1h',
      HERALD_CLIENT_PROXY_CONNECT_HTTP_STATIC_HEADERS: '{"X-K":"v"}',
      HERALD_CLIENT_PROXY_CONNECT_ENABLED: 'false',
    },
  });
  assert.equal(c.client.expired_sub_close_delay, 5000);
  assert.equal(c.channel.max_length, 100);
  assert.equal(c.channel.history_meta_ttl, 3_600_000);
  assert.deepEqual(c.client.proxy.connect.http.static_headers, { 'X-K': 'v' });
  // Text keys stay text, even when they look like numbers.
  assert.equal(loadConfig({ env: { HERALD_CLIENT_USER_ID_HTTP_HEADER: '123' } }).client.user_id_http_header, '123');
});

test('bad config files: unreadable, not JSON', () => {
  assert.match(configError(() => loadConfig({ file: '/nonexistent/h.json' })), /cannot read config file/);
  assert.match(configError(() => loadConfig({ file: tempFile('bad.json', '{oops') })), /not valid JSON/);
});

test('the demo config validates', () => {
  const c = loadConfig({ file: join(ROOT, 'herald.demo.json') });
  assert.equal(c.demo.enabled, true);
  assert.equal(c.client.allow_anonymous_connect_without_token, true);
});

test('CLI: --help, --version, and a bad config exits 1 naming the key', () => {
  const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: herald/);
  assert.match(help.stdout, /--config FILE/);
  const version = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
  assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/);
  const bad = spawnSync(process.execPath, [BIN, '--set', 'client.ping_interval=soon'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /client\.ping_interval \(from the command line\): expected a duration/);
  const unknown = spawnSync(process.execPath, [BIN, '--bogus'], { encoding: 'utf8' });
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /bogus/);
});

test('CLI: starts on the given port with flags and serves the API; SIGTERM stops it cleanly', async () => {
  const child = spawn(process.execPath, [BIN, '--port', '0', '--address', '127.0.0.1', '--api-key', 'k', '--log-level', 'silent'], {
    env: { PATH: process.env.PATH },
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const end = Date.now() + 10_000;
  while (!/listening on http:\/\/127\.0\.0\.1:(\d+)/.test(stderr)) {
    assert.ok(Date.now() < end, `herald did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)![1]);
  const res = await fetch(`http://127.0.0.1:${port}/api/info`, { method: 'POST', headers: { 'X-API-Key': 'k' }, body: '{}' });
  assert.equal(res.status, 200);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('CLI: SIGTERM while starting (Redis not there yet) stops cleanly once start gives up waiting', async () => {
  const child = spawn(
    process.execPath,
    [BIN, '--port', '0', '--address', '127.0.0.1', '--api-key', 'k', '--log-level', 'warn', '--set', 'engine.type=redis', '--set', `engine.redis.url=redis://127.0.0.1:${await freePort()}`],
    { env: { PATH: process.env.PATH } },
  );
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Starting: the engine has said it cannot reach Redis and keeps trying.
  await until(() => /redis/i.test(stdout), 10_000, 'the engine to report Redis unreachable');
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 10_000))]);
  if (code === 'still running') child.kill('SIGKILL');
  assert.equal(code, 0, stderr);
  assert.match(stderr, /SIGTERM, shutting down/);
  assert.doesNotMatch(stderr, /listening on/, 'it stopped instead of announcing itself');
});

test('CLI: the address it listens on is printed as a URL (IPv6 in brackets, any address as localhost)', () => {
  assert.equal(listeningUrl('127.0.0.1', 8000), 'http://127.0.0.1:8000');
  assert.equal(listeningUrl('::1', 8000), 'http://[::1]:8000');
  assert.equal(listeningUrl('fd00::5', 80), 'http://[fd00::5]:80');
  assert.equal(listeningUrl('0.0.0.0', 8000), 'http://localhost:8000');
  assert.equal(listeningUrl('::', 8000), 'http://localhost:8000');
  assert.equal(new URL(listeningUrl('::1', 1)).hostname, '[::1]');
});

test("a ws4redis prefix that would make its names the engine's own is refused, naming the key", () => {
  const engine = { type: 'redis' as const, redis: { url: 'redis://127.0.0.1:1' } };
  for (const prefix of ['herald.ws4redis', 'herald{x}']) {
    assert.throws(
      () => loadConfig({ values: { engine, ws4redis: { enabled: true, prefix } } }),
      (err: Error) => err instanceof HeraldError && /ws4redis\.prefix: must not start with engine\.redis\.prefix/.test(err.message),
      prefix,
    );
  }
  for (const prefix of ['', 'herald', 'heraldry', 'ws4redis']) loadConfig({ values: { engine, ws4redis: { enabled: true, prefix } } });
});

test('presence: off by default in every namespace; its TTL must outlive the update interval, naming the key', () => {
  const c = loadConfig();
  assert.equal(c.channel.without_namespace.presence, false);
  assert.equal(c.channel.without_namespace.join_leave, false);
  assert.equal(c.channel.without_namespace.allow_presence_for_client, false);
  assert.equal(c.engine.presence_ttl, 60_000);
  assert.equal(c.client.presence_update_interval, 27_000);
  assert.match(
    configError(() => loadConfig({ values: { engine: { presence_ttl: '20s' } } })),
    /engine\.presence_ttl: must be longer than client\.presence_update_interval \(27s\)/,
  );
  assert.match(configError(() => loadConfig({ values: { client: { presence_update_interval: 0 } } })), /client\.presence_update_interval: must be > 0/);
  assert.match(
    configError(() => loadConfig({ values: { client: { presence_update_interval: '30d' }, engine: { presence_ttl: '60d' } } as never })),
    /client\.presence_update_interval: must be at most 24 days/,
  );
  const ok = loadConfig({ values: { engine: { presence_ttl: '2s' }, client: { presence_update_interval: '500ms' } } });
  assert.equal(ok.engine.presence_ttl, 2000);
});

test('CLI: JSON log lines for start and stop; at debug, one per connection opened and closed', async () => {
  const child = spawn(
    process.execPath,
    [BIN, '--port', '0', '--address', '127.0.0.1', '--api-key', 'k', '--log-level', 'debug', '--set', 'client.allow_anonymous_connect_without_token=true'],
    { env: { PATH: process.env.PATH } },
  );
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => (stdout += d));
  await until(() => /listening on http:\/\/127\.0\.0\.1:(\d+)/.test(stderr), 10_000, 'herald listening');
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)![1]);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send('{"id":1,"connect":{}}');
  await until(() => stdout.includes('client connected'), 5000, 'the connect line');
  ws.close();
  await until(() => stdout.includes('client connection closed'), 5000, 'the close line');
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; client?: string; connections?: number });
  const msgs = lines.map((l) => l.msg);
  for (const msg of ['herald started', 'client connected', 'client connection closed', 'herald stopping', 'herald stopped']) assert.ok(msgs.includes(msg), `${msg} in ${msgs.join(' | ')}`);
  assert.equal(lines.find((l) => l.msg === 'client connected')!.client, lines.find((l) => l.msg === 'client connection closed')!.client);
  assert.equal(lines.find((l) => l.msg === 'herald stopping')!.connections, 0);
});

test('connection limits: off (0) by default; a negative or fractional one is refused, naming the key', () => {
  const c = loadConfig();
  assert.equal(c.client.connection_limit, 0);
  assert.equal(c.client.connection_rate_limit, 0);
  assert.equal(c.client.user_connection_limit, 0);
  for (const key of ['connection_limit', 'connection_rate_limit', 'user_connection_limit']) {
    assert.match(configError(() => loadConfig({ values: { client: { [key]: -1 } } })), new RegExp(`client\\.${key}:`));
    assert.match(configError(() => loadConfig({ values: { client: { [key]: 1.5 } } })), new RegExp(`client\\.${key}:`));
    assert.equal(loadConfig({ values: { client: { [key]: 10_000 } } }).client[key as 'connection_limit'], 10_000);
  }
});

test("position check: every 40s by default (0 means it too, as in Centrifugo), no time lag limit; a delay past Node's longest timer is refused", () => {
  const d = loadConfig({ values: {} });
  assert.equal(d.client.channel_position_check_delay, 40_000);
  assert.equal(d.client.channel_position_max_time_lag, 0);
  assert.equal(loadConfig({ values: { client: { channel_position_check_delay: 0 } } }).client.channel_position_check_delay, 40_000);
  const set = loadConfig({ values: { client: { channel_position_check_delay: '5s', channel_position_max_time_lag: '2s' } } });
  assert.equal(set.client.channel_position_check_delay, 5_000);
  assert.equal(set.client.channel_position_max_time_lag, 2_000);
  assert.match(configError(() => loadConfig({ values: { client: { channel_position_check_delay: '30d' } } })), /client\.channel_position_check_delay: must be at most 24 days/);
});
