// The servers the benchmark measures: Herald on either engine (and a baseline build), its peers
// (naive, Socket.IO, Webdis) and the two references, each started fresh, pinned to the server's CPU,
// with a Redis of its own on the load CPU where it uses one.
import { mkdtempSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpPublisher } from './http-publisher.mjs';
import { exitedWith, freePort, startPinned, stop, waitPort } from './procs.mjs';
import { redisPublisher } from './redis-publisher.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
/** Debian's Webdis (its package installs it here). */
export const WEBDIS = '/usr/bin/webdis';
export const SERVER_CPU = '0';
export const LOAD_CPU = '1';

/** A redis-server of its own for one measurement, on the load CPU. */
export async function startRedis() {
  const port = await freePort();
  const r = await startPinned(LOAD_CPU, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    ready: /Ready to accept connections/,
  });
  return { ...r, port };
}

/**
 * The server-side processes, by name: each starts one and returns { pid, proto, port,
 * publish(payload, channel), close() }. `o`: { baseline (a Herald built in that folder, or
 * undefined), heraldPing, apiKey, tokenSecret (Herald then takes HS256 tokens, no anonymous
 * connections), log }.
 */
export function serverKinds(o) {
  return {
    async 'herald-memory'() {
      return startHerald(o, { engine: { type: 'memory' } }, null);
    },
    async 'herald-baseline'() {
      return startHerald(o, { engine: { type: 'memory' } }, null, join(o.baseline, 'bin', 'herald.js'));
    },
    async 'herald-redis'() {
      const redis = await startRedis();
      return startHerald(o, onRedis(redis), redis);
    },
    // Not run unless named (--servers): Herald's Webdis dialect on the Redis engine, its subscribers
    // on the Webdis port as a Webdis page's are, publications plain PUBLISHes of the channel's own
    // name: beside `webdis`, what a Webdis user moving to Herald gets.
    async 'herald-webdis'() {
      const redis = await startRedis();
      const webdisPort = await freePort();
      return startHerald(o, { ...onRedis(redis), webdis: { enabled: true, address: '127.0.0.1', port: webdisPort } }, redis);
    },
    async 'herald-redis-baseline'() {
      const redis = await startRedis();
      return startHerald(o, onRedis(redis), redis, join(o.baseline, 'bin', 'herald.js'));
    },
    async naive() {
      return peerOnRedis(process.execPath, [join(peersDir(), 'naive.mjs')]);
    },
    async socketio() {
      const redis = await startRedis();
      const port = await freePort();
      const p = await startPinned(SERVER_CPU, process.execPath, [join(peersDir(), 'socketio.mjs')], {
        env: { PORT: String(port), REDIS_PORT: String(redis.port) },
        ready: /LISTENING/,
      });
      const { Emitter } = await import(join(peersDir(), 'node_modules/@socket.io/redis-emitter/dist/index.js'));
      const { Redis } = await import(join(peersDir(), 'node_modules/ioredis/built/index.js'));
      const client = new Redis(redis.port, '127.0.0.1');
      const emitter = new Emitter(client);
      return {
        pid: p.proc.pid,
        redisPid: redis.proc.pid,
        proto: 'socketio',
        port,
        gone: () => exitedWith(p),
        publish: async (payload, channel) => emitter.to(channel).emit('m', payload),
        close: async () => {
          client.disconnect();
          await stop(p);
          await stop(redis);
        },
      };
    },
    // A reference, never a peer: bare net.Sockets and one socket.write per delivery
    // (bench/peers/floor.mjs).
    floor: reference(() => [process.execPath, [join(peersDir(), 'floor.mjs')]]),
    // The same reference in C (bench/floor.c): what fan-out and idle sockets cost without Node.
    'floor-c': reference(() => [join(peersDir(), 'floor-c'), []]),
    async webdis() {
      if (!existsSync(WEBDIS)) throw new Error('webdis is not installed');
      const redis = await startRedis();
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'bench-webdis-'));
      const conf = join(dir, 'webdis.json');
      writeFileSync(
        conf,
        JSON.stringify({ redis_host: '127.0.0.1', redis_port: redis.port, http_host: '127.0.0.1', http_port: port, threads: 1, pool_size: 4, daemonize: false, websockets: true, database: 0, verbosity: 0, logfile: join(dir, 'webdis.log') }),
      );
      const p = await startPinned(SERVER_CPU, WEBDIS, [conf]);
      await waitPort(port);
      // Webdis holds two descriptors per subscribed socket (its own and a Redis connection), and it
      // crashes when it runs out rather than refusing a socket: with the 20,000 this container allows,
      // it crashed at 8,364-9,980 of s3's 10,000 sockets. s3 measures it at a quarter of its limit.
      const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync(`/proc/${p.proc.pid}/limits`, 'utf8'))?.[1]);
      const server = await redisPublisherServer(p, port, 'webdis', redis, (ch) => ch);
      const close = server.close;
      return {
        ...server,
        maxIdleConnections: Math.floor(limit / 4) || undefined,
        close: async () => {
          await close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/** Herald's engine settings for the Redis `redis`. */
const onRedis = (redis) => ({ engine: { type: 'redis', redis: { url: `redis://127.0.0.1:${redis.port}` } } });

/**
 * A server with a Redis of its own (naive, or a reference): it subscribes there, a client picks its
 * channel by URL path (the load generator's `naive` protocol), and publications are plain PUBLISHes.
 */
async function peerOnRedis(cmd, argv) {
  const redis = await startRedis();
  const port = await freePort();
  const p = await startPinned(SERVER_CPU, cmd, argv, { env: { PORT: String(port), REDIS_PORT: String(redis.port) }, ready: /LISTENING/ });
  return redisPublisherServer(p, port, 'naive', redis, (ch) => ch);
}

/**
 * A reference server (the command `command()` gives): on a Redis of its own like naive, and in s3
 * (idle) without Redis, holding only the sockets.
 */
function reference(command) {
  return async ({ idle = false } = {}) => {
    const [cmd, argv] = command();
    if (!idle) return peerOnRedis(cmd, argv);
    const port = await freePort();
    const p = await startPinned(SERVER_CPU, cmd, argv, { env: { PORT: String(port) }, ready: /LISTENING/ });
    return { pid: p.proc.pid, proto: 'naive', port, publish: async () => {}, close: () => stop(p) };
  };
}

/** Where prepare() installs the peers and builds the C programs. */
export function peersDir() {
  return join(ROOT, 'bench', '.peers');
}

async function redisPublisherServer(p, port, proto, redis, channelName) {
  const client = await redisPublisher(redis.port);
  return {
    pid: p.proc.pid,
    redisPid: redis.proc.pid,
    proto,
    port,
    gone: () => exitedWith(p),
    output: () => p.output(),
    publish: (payload, channel) => client.publish(channelName(channel), payload),
    close: async () => {
      client.close();
      await stop(p);
      await stop(redis);
    },
  };
}

async function startHerald(o, extra, redis, bin = join(ROOT, 'bin', 'herald.js')) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-herald-'));
  const file = join(dir, 'herald.json');
  writeFileSync(
    file,
    JSON.stringify({
      address: '127.0.0.1',
      port,
      log_level: 'warn',
      client: {
        ping_interval: o.heraldPing,
        queue_max_size: 4_194_304,
        ...(o.tokenSecret ? { token: { hmac_secret_key: o.tokenSecret } } : { allow_anonymous_connect_without_token: true }),
      },
      channel: {
        without_namespace: { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true },
        namespaces: [{ name: 'recov', allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true, history_size: 1000, history_ttl: '5m', force_recovery: true }],
      },
      http_api: { key: o.apiKey },
      ...extra,
    }),
  );
  // Herald starts as users start it: the `herald` command (bin/herald), which on one CPU runs Node
  // with --single-threaded. BENCH_NODE_ARGS="--single-threaded --cpu-prof --cpu-prof-dir=/tmp/prof"
  // runs Node with exactly these flags instead, e.g. to profile (the server is then stopped with
  // SIGTERM, so the profile gets written).
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const launcher = bin.replace(/\.js$/, '');
  const p = nodeArgs.length || !existsSync(launcher)
    ? await startPinned(SERVER_CPU, process.execPath, [...nodeArgs, bin, '--config', file], { ready: /^herald \S+ listening on/m })
    : await startPinned(SERVER_CPU, launcher, ['--config', file], { ready: /^herald \S+ listening on/m });
  // Webdis clients (herald-webdis) connect to the Webdis listener and hear a PUBLISH of the channel's
  // own name, as Webdis's do.
  const webdisPort = extra.webdis?.port;
  if (webdisPort) await waitPort(webdisPort);
  // Like the peers: a plain PUBLISH through Redis (a channel without history takes the payload as is);
  // on the memory engine, API calls.
  const publisher = redis ? await redisPublisher(redis.port) : await httpPublisher(port, { 'X-API-Key': o.apiKey });
  const publish = webdisPort
    ? (payload, channel) => publisher.publish(channel, payload)
    : redis
      ? (payload, channel) => publisher.publish(`herald{${channel}}.p`, payload)
      : (payload, channel) => publisher.post('/api/publish', `{"channel":${JSON.stringify(channel)},"data":${payload}}`);
  return {
    pid: p.proc.pid,
    redisPid: redis?.proc.pid,
    proto: webdisPort ? 'webdis' : 'herald',
    port: webdisPort ?? port,
    gone: () => exitedWith(p),
    publish,
    close: async () => {
      publisher.close();
      await stop(p, nodeArgs.length > 0);
      if (nodeArgs.length > 0) {
        writeFileSync(join(dir, 'server.log'), p.output());
        o.log(`server output: ${join(dir, 'server.log')}`);
      } else rmSync(dir, { recursive: true, force: true });
      if (redis) await stop(redis);
    },
  };
}
