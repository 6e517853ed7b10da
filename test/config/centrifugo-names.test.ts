// Centrifugo v6's names for settings Herald has under its own (http_server, log, prometheus,
// engine.redis.address and its credentials): read from a file, refused by name where Herald has no such
// setting or both names are given, and a real node started from a Centrifugo-style file.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { Centrifuge } from 'centrifuge';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { HeraldApi, loadConfig } from '../../src/index.js';
import { configError, once, until } from '../helpers/herald.js';
import { freePort, RedisProcess } from '../helpers/redis.js';
import { tempFile } from '../helpers/temp.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'herald.js');

function configFile(content: unknown): string {
  return tempFile('config.json', JSON.stringify(content));
}

const valuesError = (values: Record<string, unknown>) => configError(() => loadConfig({ values: values as never }));

test("Centrifugo v6's http_server, log, prometheus and engine.redis keys are read as Herald's", () => {
  const c = loadConfig({
    file: configFile({
      http_server: { address: '127.0.0.1', port: 9100 },
      log: { level: 'none' },
      prometheus: { enabled: true },
      engine: { type: 'redis', redis: { address: 'redis.internal:6380', user: 'app', password: 'p@ss:word', db: 2, io_timeout: '3s', presence_ttl: '90s' } },
    }),
  });
  assert.equal(c.address, '127.0.0.1');
  assert.equal(c.port, 9100);
  assert.equal(c.log_level, 'silent'); // Centrifugo's "none"
  assert.equal(c.metrics.enabled, true);
  assert.equal(c.engine.redis.url, 'redis://app:p%40ss%3Aword@redis.internal:6380/2');
  assert.equal(c.engine.redis.command_timeout, 3000);
  assert.equal(c.engine.presence_ttl, 90_000);

  const transports = loadConfig({
    values: {
      websocket: { handler_prefix: '/ws', message_size_limit: 131072, compression: false, disabled: false },
      sse: { enabled: true, handler_prefix: '/events' },
      http_stream: { enabled: true, handler_prefix: '/stream' },
      emulation: { handler_prefix: '/emu' },
    } as never,
  });
  assert.equal(transports.client.websocket_path, '/ws');
  assert.equal(transports.client.max_message_size, 131072);
  assert.deepEqual(transports.client.sse, { enabled: true, path: '/events' });
  assert.deepEqual(transports.client.http_stream, { enabled: true, path: '/stream' });
  assert.equal(transports.client.emulation_path, '/emu');

  // A URL is kept as written, its own credentials and database winning; a one-element list as Centrifugo writes it.
  const url = loadConfig({ values: { engine: { redis: { address: ['rediss://own:pw@redis.internal:6380/1'], password: 'other', db: 5 } } } as never });
  assert.equal(url.engine.redis.url, 'rediss://own:pw@redis.internal:6380/1');
  const cluster = loadConfig({ values: { engine: { type: 'redis', redis: { cluster_address: ['127.0.0.1:7000', '127.0.0.1:7001'], password: 'pw' } } } as never });
  assert.deepEqual(cluster.engine.redis.cluster, ['redis://:pw@127.0.0.1:7000', 'redis://:pw@127.0.0.1:7001']);
  assert.equal(cluster.engine.redis.url, '');
});

test("Centrifugo names Herald has no setting for, or given beside Herald's own, are refused by name", () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ http_server: { port: 1 }, port: 2 }, /http_server\.port: Herald's port is set too: set one of them/],
    [{ http_server: { tls: { enabled: true } } }, /http_server\.tls: not a Herald setting/],
    [{ http_server: 8000 }, /http_server: expected an object/],
    [{ log: { file: '/var/log/x' } }, /log\.file: not a Herald setting \(Herald writes its JSON log lines to stdout\)/],
    [{ prometheus: { instrument_http_handlers: true } }, /prometheus\.instrument_http_handlers: not a Herald setting/],
    [{ prometheus: { enabled: true }, metrics: { enabled: false } }, /prometheus\.enabled: Herald's metrics\.enabled is set too/],
    [{ engine: { redis: { address: ['127.0.0.1:6380', '127.0.0.1:6381'] } } }, /engine\.redis\.address: give one address: Herald uses one Redis, or a Redis Cluster/],
    [{ engine: { redis: { address: '127.0.0.1:6380', url: 'redis://127.0.0.1:6380' } } }, /engine\.redis\.address: Herald's engine\.redis\.url is set too/],
    [{ engine: { redis: { address: '127.0.0.1:6380', cluster_address: ['127.0.0.1:7000'] } } }, /set address \(one Redis\) or cluster_address \(a Redis Cluster\), not both/],
    [{ engine: { redis: { cluster_address: ['127.0.0.1:7000'], db: 1 } } }, /engine\.redis\.db: a Redis Cluster has database 0 only/],
    [{ engine: { redis: { password: 'pw' } } }, /engine\.redis\.password: goes with engine\.redis\.address or cluster_address/],
    [{ engine: { redis: { address: '127.0.0.1:6380', user: 7 } } }, /engine\.redis\.user: expected a string/],
    [{ engine: { redis: { address: '127.0.0.1:6380', sentinel_address: ['x:1'] } } }, /engine\.redis: unknown key\(s\) "sentinel_address"/],
    [{ websocket: { compression: true } }, /websocket\.compression: Herald does not compress WebSocket frames/],
    [{ websocket: { disabled: true } }, /websocket\.disabled: Herald always serves the WebSocket transport/],
    [{ websocket: { write_timeout: '1s' } }, /websocket\.write_timeout: not a Herald setting/],
    [{ sse: { max_request_body_size: 1 } }, /sse\.max_request_body_size: not a Herald setting \(a request body is limited by client\.max_message_size\)/],
    [{ http_stream: { enabled: true }, client: { http_stream: { enabled: false } } }, /http_stream\.enabled: Herald's client\.http_stream\.enabled is set too/],
    [{ admin: { enabled: true } }, /\(top level\): unknown key\(s\) "admin"/],
  ];
  for (const [values, expected] of cases) assert.match(valuesError(values), expected, JSON.stringify(values));
  // Every problem of a source at once, not the first alone.
  const both = valuesError({ http_server: { tls: {} }, log: { file: 'x' } });
  assert.match(both, /http_server\.tls/);
  assert.match(both, /log\.file/);
});

test('a bad value under a Centrifugo name is named as written; the environment still wins over the file', () => {
  assert.match(valuesError({ http_server: { port: 'eighty' } }), /http_server\.port \(Herald's port\): .*expected number/);
  assert.match(valuesError({ log: { level: 'loud' } }), /log\.level \(Herald's log_level\): /);
  assert.match(valuesError({ engine: { type: 'redis', redis: { address: 'not an address' } } }), /engine\.redis\.address \(Herald's engine\.redis\.url\): must start with redis:\/\//);
  const file = configFile({ http_server: { port: 9100 } });
  assert.equal(loadConfig({ file, env: { HERALD_PORT: '9200' } }).port, 9200);
  // Set again by the environment, the key is Herald's: the message names it so.
  assert.throws(() => loadConfig({ file, env: { HERALD_PORT: 'x' } }), (err: Error) => /\n {2}port \(from the environment, HERALD_PORT\): /.test(err.message) && !/http_server/.test(err.message));
});

test('a node started from a Centrifugo-style file: its port, metrics, and the Redis database and password given apart', async () => {
  const password = 's3cr@t:pw';
  const redis = await RedisProcess.start();
  const admin = redis.client();
  await admin.config('SET', 'requirepass', password);
  admin.disconnect();
  const port = await freePort();
  const file = configFile({
    http_server: { address: '127.0.0.1', port },
    log: { level: 'none' },
    prometheus: { enabled: true },
    engine: { type: 'redis', redis: { address: `127.0.0.1:${redis.port}`, password, db: 3, prefix: 'v6test' } },
    http_api: { key: 'k' },
    client: { allow_anonymous_connect_without_token: true },
    channel: { without_namespace: { allow_subscribe_for_anonymous: true, allow_subscribe_for_client: true, history_size: 10, history_ttl: '60s' } },
  });
  const child = spawn(process.execPath, [BIN, '--config', file], { env: { PATH: process.env.PATH } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const centrifuge = new Centrifuge(`ws://127.0.0.1:${port}/connection/websocket`, { websocket: WebSocket, minReconnectDelay: 50, maxReconnectDelay: 300 });
  try {
    await until(() => new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`).test(stderr), 15_000, `herald to listen on ${port}: ${stderr}`);
    const sub = centrifuge.newSubscription('news');
    const got = once<{ data: unknown }>(sub, 'publication', 10_000);
    sub.subscribe();
    centrifuge.connect();
    await once(sub, 'subscribed', 10_000);
    await new HeraldApi(`http://127.0.0.1:${port}`, 'k').publish('news', { text: 'hi' });
    assert.deepEqual((await got).data, { text: 'hi' });
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(metrics.status, 200);
    // The history went to database 3, reached with the password.
    const client = new Redis({ host: '127.0.0.1', port: redis.port, password, maxRetriesPerRequest: 1 });
    try {
      await client.select(3);
      assert.ok((await client.keys('v6test*')).length > 0, 'keys in database 3');
      await client.select(0);
      assert.deepEqual(await client.keys('v6test*'), [], 'none in database 0');
    } finally {
      client.disconnect();
    }
  } finally {
    centrifuge.disconnect();
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 10_000))]);
    if (code === 'still running') child.kill('SIGKILL');
    await redis.stop();
  }
});
