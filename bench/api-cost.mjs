#!/usr/bin/env node
// What one server API call costs Herald, beside a bare Node http server that reads the body, parses
// it and answers a fixed reply (the least a Node HTTP endpoint does per call).
//   node bench/api-cost.mjs [--calls 20000] [--rate 5000] [--rounds 3] [--batch N] [--engine redis] [--pings N [--seconds 10]] [--baseline DIR]
// Each server runs in its own process on CPU 0 (Herald on the memory engine, with 100 WebSocket
// subscribers, one per channel, that receive every publication); this process publishes on CPU 1
// with the benchmark's HTTP publisher (4 keep-alive connections, pipelined). The server measures
// itself between the first and last call: CPU per call (from process.cpuUsage) and bytes allocated on
// the JS heap per call (from V8's GC statistics: what each collection found, plus the growth since),
// the garbage that young-generation collections then pause the process to clear (Buffers' bytes
// outside the JS heap are not in it). Rounds alternate the servers; the table gives each one's median.
// With --batch N, Herald gets the same publications N to a `batch` call (the bare server reads and
// parses the same bodies), and every figure is per publication.
// With --engine redis, Herald runs on the Redis engine (a redis-server of its own per round, on CPU
// 1) with history on every channel, so that each publication is one FCALL to Redis; the bare server
// is left out. The table also gives each call's round trip as the publisher saw it (p50, p99).
// With --pings N, what an idle connection costs instead: N native clients that only answer Herald's
// pings (every 2 s here), and every figure is per ping and its pong, over --seconds (default 10).
// It measures the build in dist/ (and DIR/dist): build first (`npx tsc -p .`). Development numbers:
// nothing is written to bench/results.
import { spawn } from 'node:child_process';
import v8 from 'node:v8';
import { join } from 'node:path';
import { atRate } from './pace.mjs';
import { pinSelf, stop } from './procs.mjs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedis } from './servers.mjs';


const ROOT = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const argValue = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const KEY = 'bench-key';

if (args[0] === '--serve') await serve(args[1], args[2], args[3] === 'pings', args[4]);
else await main();

async function main() {
  const calls = Number(argValue('--calls', 20000));
  const batch = Number(argValue('--batch', 1));
  if (!(Number.isInteger(batch) && batch >= 1 && calls % batch === 0)) throw new Error('--batch takes a whole number that divides --calls');
  const rate = Number(argValue('--rate', 5000));
  const rounds = Number(argValue('--rounds', 3));
  const baseline = argValue('--baseline');
  pinSelf(1);
  const { httpPublisher } = await import('./http-publisher.mjs');
  const { default: WebSocket } = await import('ws');
  const pings = Number(argValue('--pings', 0));
  const seconds = Number(argValue('--seconds', 10));
  const engine = argValue('--engine', 'memory');
  if (engine !== 'memory' && engine !== 'redis') throw new Error('--engine takes memory or redis');
  const servers = [...(pings || engine === 'redis' ? [] : [['node-http', ROOT]]), ['herald', ROOT], ...(baseline ? [['herald-baseline', baseline]] : [])];
  const rows = new Map(servers.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    // Every other round in the opposite order, so no server is always measured first.
    for (const [name, root] of round % 2 ? [...servers].reverse() : servers) {
      const redis = engine === 'redis' ? await startRedis() : undefined;
      // Started on CPU 0 from the first instruction (every thread), with this process's IPC channel.
      const child = spawn('taskset', ['-c', '0', process.execPath, ...(process.env.API_COST_NODE_ARGS ?? '').split(' ').filter(Boolean), new URL(import.meta.url).pathname, '--serve', name === 'node-http' ? 'bare' : 'herald', root, pings ? 'pings' : 'calls', redis ? `redis://127.0.0.1:${redis.port}` : ''], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const ask = (msg) =>
        new Promise((resolve, reject) => {
          child.once('message', resolve);
          exited.then((code) => reject(new Error(`${name} exited (${code})`)));
          if (msg) child.send(msg);
        });
      let pub;
      let subscribers = [];
      try {
        const { port, wsPort } = await ask(); // it says when it listens
        if (pings) {
          // Idle clients: they answer pings (counted) and nothing else happens.
          subscribers = await subscribe(WebSocket, wsPort, pings);
          let pongs = 0;
          for (const ws of subscribers) ws.on('message', (d) => String(d) === '{}' && (ws.send('{}'), pongs++));
          await sleep(3000); // every client pinged at least once: the JIT has seen the path
          await ask({ op: 'start' });
          const from = pongs;
          await sleep(seconds * 1000);
          const m = await ask({ op: 'stop', calls: pongs - from });
          rows.get(name).push(m);
          console.error(`[api-cost] round ${round + 1} ${name}: ${JSON.stringify(m)} over ${pongs - from} pings`);
          continue;
        }
        subscribers = wsPort ? await subscribe(WebSocket, wsPort, 100) : [];
        // Transport error mode: a refused call is an HTTP error, which fails the run instead of
        // being counted as a (cheaper) call.
        pub = await httpPublisher(port, { 'X-API-Key': KEY, 'X-Centrifugo-Error-Mode': 'transport' });
        const body = (i) => JSON.stringify({ channel: `bench${i % 100}`, data: { m: `T=${Date.now()} ${'x'.repeat(90)}`.slice(0, 90) } });
        await publish(pub, body, 2000, rate, batch); // warm-up: JIT and pools
        await ask({ op: 'start' });
        const took = await publish(pub, body, calls, rate, batch);
        const m = { ...(await ask({ op: 'stop', calls })), ...percentiles(took) };
        rows.get(name).push(m);
        console.error(`[api-cost] round ${round + 1} ${name}: ${JSON.stringify(m)}`);
      } finally {
        pub?.close();
        for (const ws of subscribers) ws.terminate();
        child.kill();
        await exited;
        if (redis) await stop(redis);
      }
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const how = pings ? `${seconds} s of ${pings} idle clients answering pings every 2 s` : batch > 1 ? `${calls} publications at ${rate}/s, ${batch} to a batch call,` : `${calls} publish calls at ${rate}/s`;
  const per = pings ? 'ping and its pong' : 'publication';
  console.log(`\n${how} per round, median of ${rounds} rounds (server on CPU 0; figures per ${per}):\n`);
  // Each column is its own median over the rounds. Scavenges compare builds of one server only: each
  // process sizes its young generation itself (a bare server's stays small, so it collects more often).
  const calls_ = !pings;
  console.log(`| server | CPU µs per ${per} | of it user | JS heap bytes allocated per ${per} | young-generation collections per 10k |${calls_ ? ' call round trip p50 / p99 (ms) |' : ''}`);
  console.log(`|---|---|---|---|---|${calls_ ? '---|' : ''}`);
  for (const [name, ms] of rows) {
    const trip = calls_ ? ` ${median(ms.map((m) => m.p50_ms)).toFixed(2)} / ${median(ms.map((m) => m.p99_ms)).toFixed(2)} |` : '';
    console.log(`| ${name} | ${median(ms.map((m) => m.cpu_us)).toFixed(1)} | ${median(ms.map((m) => m.user_us)).toFixed(1)} | ${median(ms.map((m) => m.alloc_bytes)).toLocaleString('en-US')} | ${median(ms.map((m) => m.scavenges_per_10k)).toFixed(1)} |${trip}`);
  }
}

/**
 * Publishes `n` publications at `rate` a second (in bursts, like the benchmark's publisher): one call
 * each, or `batch` to a `batch` call. A refused publication fails the run. Resolves with each call's
 * round trip in ms, from the request written to its answer read.
 */
async function publish(pub, body, n, rate, batch) {
  const took = [];
  const timed = (call) => {
    const t0 = performance.now();
    return call.then((reply) => {
      took.push(performance.now() - t0);
      return reply;
    });
  };
  await atRate(n, rate, (first) => {
    if (batch === 1) return timed(pub.post('/api/publish', body(first)));
    const commands = Array.from({ length: batch }, (_, i) => `{"publish":${body(first + i)}}`);
    return timed(pub.post('/api/batch', `{"commands":[${commands.join(',')}]}`)).then((reply) => {
      if (reply.includes('"error"')) throw new Error(`a publication was refused: ${reply.slice(0, 200)}`);
    });
  }, batch);
  return took;
}

/** p50 and p99 of round trips in ms. */
function percentiles(took) {
  const sorted = [...took].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50_ms: at(0.5), p99_ms: at(0.99) };
}

/** Opens `n` native WebSocket clients, each subscribed to its own channel `bench<i>`. */
function subscribe(WebSocket, port, n) {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
        ws.on('error', reject);
        ws.on('open', () => ws.send(`${JSON.stringify({ id: 1, connect: {} })}\n${JSON.stringify({ id: 2, subscribe: { channel: `bench${i}` } })}`));
        let replies = 0;
        ws.on('message', (d) => {
          replies += String(d).split('\n').filter((l) => l.includes('"id":')).length;
          if (replies === 2) resolve(ws);
        });
      }),
    ),
  );
}

/** The server side: a bare Node http server or Herald, measuring itself between `start` and `stop`. */
async function serve(kind, root, pings, redisUrl) {
  let port;
  let wsPort = 0;
  if (kind === 'bare') {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 13 }).end('{"result":{}}');
      });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = server.address().port;
  } else {
    const { createHerald, loadConfig } = await import(join(root, 'dist', 'src', 'index.js'));
    const herald = createHerald({
      config: loadConfig({
        values: {
          address: '127.0.0.1',
          port: 0,
          log_level: 'error',
          http_api: { key: KEY },
          client: { allow_anonymous_connect_without_token: true, ...(pings ? { ping_interval: '2s', pong_timeout: '1s' } : {}) },
          // On the Redis engine with history, so that a publication is one FCALL (as a user with recovery has).
          ...(redisUrl ? { engine: { type: 'redis', redis: { url: redisUrl } } } : {}),
          channel: { without_namespace: { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true, ...(redisUrl ? { history_size: 100, history_ttl: '5m' } : {}) } },
        },
      }),
    });
    await herald.start();
    port = wsPort = herald.port;
  }
  let profiler;
  let cpu;
  let heap;
  let wall;
  process.on('message', (msg) => {
    if (msg.op === 'start') {
      profiler = new v8.GCProfiler();
      profiler.start();
      heap = v8.getHeapStatistics().used_heap_size;
      cpu = process.cpuUsage();
      wall = performance.now();
      return process.send({ ok: true });
    }
    if (msg.op === 'stop') {
      const used = process.cpuUsage(cpu);
      const after = v8.getHeapStatistics().used_heap_size;
      let allocated = 0;
      let last = heap;
      let scavenges = 0;
      for (const s of profiler.stop().statistics) {
        allocated += s.beforeGC.heapStatistics.usedHeapSize - last;
        last = s.afterGC.heapStatistics.usedHeapSize;
        if (s.gcType === 'Scavenge') scavenges++;
      }
      allocated += after - last;
      return process.send({
        cpu_us: (used.user + used.system) / msg.calls,
        user_us: used.user / msg.calls,
        alloc_bytes: Math.round(allocated / msg.calls),
        scavenges_per_10k: (scavenges * 10000) / msg.calls,
        // The share of the window the server was on CPU: at a few calls a millisecond, each wake-up
        // of an idle process is part of every call's cost.
        busy: (used.user + used.system) / 1000 / (performance.now() - wall),
      });
    }
  });
  // Ends by exiting (a profile, API_COST_NODE_ARGS=--cpu-prof, is written at exit).
  process.on('SIGTERM', () => process.exit(0));
  process.send({ port, wsPort });
}
