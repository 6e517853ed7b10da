#!/usr/bin/env node
// Herald's benchmark: Herald and its peers, side by side in one run on this machine.
//   node bench/run.mjs [--quick] [--references] [--tokens] [--only s1,s2,s3,s4] [--servers herald-memory,herald-redis,herald-webdis,naive,socketio,webdis,floor,floor-c] [--rates 2,10] [--s2-rounds 2]
// The server under test runs on CPU 0; the load generator (C, bench/loadgen.c), the publisher and
// Redis on CPU 1. Every measurement gets a fresh server process and a fresh Redis. Results go to
// bench/results/<date>.jsonl and the headline table to docs/performance.md.
// BENCH_PING=<duration> sets Herald's ping interval (default 25s, Herald's and Centrifugo's default;
// 0 turns pings off, to see what the heartbeat costs).
import { execFileSync, spawnSync } from 'node:child_process';
import { createSecretKey } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { pinSelf } from './procs.mjs';
import { atRate } from './pace.mjs';
import { startLoadgen as startLoadgenOn } from './loadgen.mjs';
import { LOAD_CPU, peersDir, SERVER_CPU, serverKinds, WEBDIS } from './servers.mjs';
import { recoveryScenario } from './recovery.mjs';
import { reportLines, writeReport } from './report.mjs';
import { cpuTimes, procStats } from './proc-stats.mjs';
import { ensureDebianPackages, onPath } from '../scripts/debian-packages.mjs';
import { SignJWT } from 'jose';

const ROOT = new URL('..', import.meta.url).pathname;
// The options (the usage line above); an unknown one, or one without its value, stops the run at once.
const USAGE = 'npm run bench -- [--quick] [--references] [--tokens] [--only s1,s2,s3,s4] [--servers a,b] [--rates 2,10] [--s2-rounds N] [--baseline DIR]';
const usageError = (message) => {
  console.error(`bench: ${message}\nusage: ${USAGE}`);
  process.exit(2);
};
let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      references: { type: 'boolean' },
      tokens: { type: 'boolean' },
      only: { type: 'string' },
      servers: { type: 'string' },
      rates: { type: 'string' },
      's2-rounds': { type: 'string' },
      baseline: { type: 'string' },
    },
  }));
} catch (err) {
  usageError(err.message);
}
const QUICK = opts.quick === true;
const SCENARIOS = ['s1', 's2', 's3', 's4'];
const ONLY = (opts.only ?? SCENARIOS.join(',')).split(',');
for (const name of ONLY) if (!SCENARIOS.includes(name)) usageError(`--only takes scenarios among ${SCENARIOS.join(',')} (got ${JSON.stringify(name)})`);
// By default Herald on both engines and the issue's three peers. --references adds the two servers
// that are not gateways (bench/peers/floor.mjs, bench/floor.c: what a Node or C server that only
// writes spends), to tell what the machine allows; the headline's runs are made with it.
const REFERENCES = ['floor', 'floor-c'];
// With --servers, the list given is measured as it is (name the references there to have them).
const SERVERS = (opts.servers ?? ['herald-memory', 'herald-redis', 'naive', 'socketio', 'webdis', ...(opts.references ? REFERENCES : [])].join(',')).split(',');
/** Herald's ping interval in every setup (BENCH_PING, above). */
const HERALD_PING = process.env.BENCH_PING ?? '25s';
// --baseline DIR: also measure the Herald checked out and built in DIR, to compare an optimisation
// before and after in the same run: on the memory engine (herald-baseline) and, when herald-redis is
// measured, on the Redis engine too (herald-redis-baseline).
const BASELINE = opts.baseline;
if (BASELINE && !existsSync(join(BASELINE, 'bin', 'herald.js'))) usageError(`--baseline takes a checkout of Herald (no bin/herald.js in ${BASELINE})`);
if (BASELINE && SERVERS.includes('herald-redis')) SERVERS.unshift('herald-redis-baseline');
if (BASELINE && (SERVERS.includes('herald-memory') || !SERVERS.includes('herald-redis'))) SERVERS.unshift('herald-baseline');
const CFG = QUICK
  ? { s1Conns: 1000, s1Rates: [10, 50, 100, 200], stepSec: 2, warmSec: 1, warmRate: 50, s2Conns: 1000, s2Rate: 1000, s2Sec: 3, s3Conns: 2000, s4Clients: 200 }
  : { s1Conns: 5000, s1Rates: [2, 10, 20, 40, 80, 160, 320, 640], stepSec: 4, warmSec: 2, warmRate: 10, s2Conns: 5000, s2Rate: 5000, s2Sec: 5, s3Conns: 10000, s4Clients: 1000 };
// s2's warm-up publishes 5,000 a second in both modes: at quick mode's own 1,000/s, its one second
// left Herald's hot path to be compiled during the measurement (p99 about 3 ms where naive's was 0.5;
// 0.4–1.2 ms after 5,000 publications).
const S2_WARM_RATE = 5000;
// --rates 2,10: only these s1 publication rates (for profiling one step).
if (opts.rates) CFG.s1Rates = opts.rates.split(',').map(Number);
if (!CFG.s1Rates.every((r) => Number.isInteger(r) && r >= 1)) usageError(`--rates takes publications a second, whole numbers from 1 (got ${JSON.stringify(opts.rates)})`);
// --s2-rounds N: how many times s2 measures every server (default 2; 1 in quick mode).
const S2_ROUNDS = Number(opts['s2-rounds'] ?? (QUICK ? 1 : 2));
if (!(Number.isInteger(S2_ROUNDS) && S2_ROUNDS >= 1)) usageError('--s2-rounds takes a whole number of rounds, at least 1');
const PAD = 'x'.repeat(100);
const API_KEY = 'bench-key';
// --tokens: Herald takes no anonymous connections but an HS256 connection token (its HMAC key set),
// and the load generator's sockets connect with one (the same for all: Herald verifies each). What
// verifying a token adds to a connection shows in s3's setup. Not a full run.
const TOKENS = opts.tokens === true;
const TOKEN_SECRET = 'bench-token-secret-bench-token-secret';
if (TOKENS) {
  const key = createSecretKey(Buffer.from(TOKEN_SECRET, 'utf8'));
  process.env.LOADGEN_TOKEN = await new SignJWT({ sub: 'bench' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('2h').sign(key);
}
/** LOADGEN_BUSY_POLL=1: the load generator polls without sleeping (bench/loadgen.c). */
const BUSY_POLL = process.env.LOADGEN_BUSY_POLL === '1';
/** LOADGEN_NAP_US: how long the load generator naps between polls while data flows (bench/loadgen.c; 0 blocks in epoll_wait). */
const NAP_DEFAULT = 100;
const NAP_RAW = process.env.LOADGEN_NAP_US ?? String(NAP_DEFAULT);
if (!/^\d{1,6}$/.test(NAP_RAW)) throw new Error(`LOADGEN_NAP_US takes a whole number of microseconds, 0 to 999999 (got ${JSON.stringify(NAP_RAW)})`);
const NAP_US = Number(NAP_RAW);
// The load generator reads the same variable: hand it the value checked here.
process.env.LOADGEN_NAP_US = String(NAP_US);
// This process is the publisher (and runs s4's clients): it goes on the load CPU with all its threads,
// so that it never takes the server's CPU.
pinSelf(LOAD_CPU);

// Each line says how long the run has taken so far (where a run's minutes go).
const started = performance.now();
const log = (...a) => console.error(`[bench +${Math.round((performance.now() - started) / 1000)}s]`, ...a);
const SERVER_KINDS = serverKinds({ baseline: BASELINE, heraldPing: HERALD_PING, apiKey: API_KEY, tokenSecret: TOKENS ? TOKEN_SECRET : undefined, log });
for (const kind of SERVERS) if (!Object.hasOwn(SERVER_KINDS, kind)) usageError(`--servers takes servers among ${Object.keys(SERVER_KINDS).filter((k) => !k.includes('baseline')).join(',')} (got ${JSON.stringify(kind)})`);

/** Starts the C load generator (bench/loadgen.c, built by prepare()) on the load CPU. */
const startLoadgen = (server, conns, mode) => startLoadgenOn(LOAD_CPU, join(peersDir(), 'loadgen'), server, conns, mode);

// A 100-byte JSON payload carrying its send time in microseconds since the epoch.
// The send time in µs of CLOCK_MONOTONIC (process.hrtime), the load generator's clock.
const payload = () => JSON.stringify({ m: `T=${process.hrtime.bigint() / 1000n} ${PAD}`.slice(0, 90) });

/** Publishes that failed (a server or Redis refusing); reported with each measurement. */
let publishErrors = 0;

/** Publishes `rate` messages a second for `seconds` (spread evenly, in small bursts: see pace.mjs). */
function publishAtRate(server, rate, seconds, channelOf) {
  return atRate(Math.round(rate * seconds), rate, (i) =>
    Promise.resolve(server.publish(payload(), channelOf(i))).catch(() => {
      publishErrors++;
    }),
  );
}

/** Waits until the load generator has received `expected` deliveries since its last mark, at most `maxMs` (polled every `everyMs`). */
async function deliveries(lg, expected, maxMs, everyMs) {
  const end = Date.now() + maxMs;
  while ((await lg.peek()).recv < expected && Date.now() < end) await sleep(everyMs);
}

/**
 * Checks that publications reach the subscribers before measuring: a setup that delivers nothing is
 * reported as an error, not as a row of zeros.
 */
async function probe(server, lg, channelOf) {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    await lg.mark();
    await server.publish(payload(), channelOf(0)).catch(() => undefined);
    await sleep(500);
    if ((await lg.mark()).recv > 0) return;
  }
  const state = server.gone?.() ?? (server.output ? `the server runs; its output: ${server.output().slice(-300)}` : '');
  throw new Error(`no publication reached the subscribers within 10 s of subscribing${state ? `; ${state}` : ''}`);
}

async function s1(kind) {
  const out = [];
  const server = await SERVER_KINDS[kind]();
  let lg;
  try {
    lg = await startLoadgen(server, CFG.s1Conns, 'same');
    await probe(server, lg, () => 'bench');
    // Warm-up at 50k deliveries/s, not measured (every server alike): the first second of traffic
    // after a start runs before the JIT has compiled the hot paths, in the server and the publisher.
    await publishAtRate(server, CFG.warmRate, CFG.warmSec, () => 'bench');
    await sleep(500);
    let failures = 0;
    for (const rate of CFG.s1Rates) {
      await lg.mark();
      const before = procStats(server.pid);
      const cpuBefore = cpuTimes(SERVER_CPU);
      const t0 = performance.now();
      publishErrors = 0;
      const sent = await publishAtRate(server, rate, CFG.stepSec, () => 'bench');
      const expected = sent * CFG.s1Conns;
      // Deliveries still on their way when publishing stops belong to the step: wait for them (at most
      // 3 s), then read the step's stats in one piece, so its percentiles are over all its deliveries.
      await deliveries(lg, expected, 3000, 200);
      const stats = await lg.mark();
      const received = stats.recv;
      const seconds = (performance.now() - t0) / 1000;
      const after = procStats(server.pid);
      const cpuAfter = cpuTimes(SERVER_CPU);
      const cpuTotal = cpuAfter.busy - cpuBefore.busy + cpuAfter.idle - cpuBefore.idle;
      const row = {
        publish_errors: publishErrors,
        scenario: 's1',
        server: kind,
        subscribers: CFG.s1Conns,
        pub_rate: rate,
        target_deliveries_per_s: rate * CFG.s1Conns,
        deliveries_per_s: Math.round(received / seconds),
        loss: Math.max(0, expected - received),
        p50_ms: stats.p50 / 1000,
        p99_ms: stats.p99 / 1000,
        p999_ms: stats.p999 / 1000,
        server_cpu_us_per_delivery: received ? (after.cpuUs - before.cpuUs) / received : null,
        // The part spent in the kernel (socket writes), which no user-space change removes.
        server_sys_us_per_delivery: received ? (after.sysUs - before.sysUs) / received : null,
        // Below 1 when several publications to a socket go out in one write.
        server_writes_per_delivery: received ? (after.writes - before.writes) / received : null,
        server_rss_mb: after.rss / 2 ** 20,
        loadgen_cpu_pct: (stats.cpu_us / 1e6 / seconds) * 100,
        // The server's CPU over the step: the share it was idle (the server waited rather than
        // worked), and the share of softirq work (much of it the loopback's receive side of the
        // server's own writes; counted in the server's CPU only when it ran in the server's context).
        server_cpu0_idle_pct: (100 * (cpuAfter.idle - cpuBefore.idle)) / cpuTotal,
        server_cpu0_softirq_pct: (100 * (cpuAfter.softirq - cpuBefore.softirq)) / cpuTotal,
      };
      // A busy-polling load generator (LOADGEN_BUSY_POLL=1) reads 100% by construction: no flag then.
      row.loadgen_saturated = BUSY_POLL ? null : row.loadgen_cpu_pct > 80;
      if (row.loss > 0) {
        // What the drain missed counts as loss by the issue's rule. It is waited for here, for as long
        // as it keeps coming (at most 60 s), so that it does not count in the next step, and the row
        // tells what came late from what is still missing.
        const end = Date.now() + 60_000;
        let got = 0;
        let lastCame = Date.now();
        while (got < row.loss && Date.now() < end && Date.now() - lastCame < 2000) {
          await sleep(200);
          const recv = (await lg.peek()).recv;
          if (recv > got) {
            got = recv;
            lastCame = Date.now();
          }
        }
        row.late = Math.min(row.loss, (await lg.mark()).recv);
        row.missing = row.loss - row.late;
      }
      log(JSON.stringify(row));
      out.push(row);
      if (row.loss > 0 || row.p99_ms > 1000) failures++;
      if (failures >= 2) break;
    }
  } finally {
    await lg?.close();
    await server.close();
  }
  return out;
}

async function s2(kind) {
  const server = await SERVER_KINDS[kind]();
  let lg;
  const channelOf = () => `bench${Math.floor(Math.random() * CFG.s2Conns)}`;
  try {
    lg = await startLoadgen(server, CFG.s2Conns, 'each');
    await probe(server, lg, () => 'bench0');
    await publishAtRate(server, S2_WARM_RATE, CFG.warmSec, channelOf); // warm-up, as in s1
    await sleep(500);
    await lg.mark();
    const before = procStats(server.pid);
    const t0 = performance.now();
    const sent = await publishAtRate(server, CFG.s2Rate, CFG.s2Sec, channelOf);
    const seconds = (performance.now() - t0) / 1000;
    // Deliveries still on their way belong to the measurement: wait for them, at most a second.
    await deliveries(lg, sent, 1000, 50);
    const stats = await lg.mark();
    const after = procStats(server.pid);
    const row = {
      scenario: 's2',
      server: kind,
      subscribers: CFG.s2Conns,
      pub_rate: CFG.s2Rate,
      deliveries_per_s: Math.round(stats.recv / seconds),
      loss: Math.max(0, sent - stats.recv),
      p50_ms: stats.p50 / 1000,
      p99_ms: stats.p99 / 1000,
      p999_ms: stats.p999 / 1000,
      server_cpu_us_per_delivery: stats.recv ? (after.cpuUs - before.cpuUs) / stats.recv : null,
      server_sys_us_per_delivery: stats.recv ? (after.sysUs - before.sysUs) / stats.recv : null,
      server_writes_per_delivery: stats.recv ? (after.writes - before.writes) / stats.recv : null,
      server_rss_mb: after.rss / 2 ** 20,
      loadgen_cpu_pct: (stats.cpu_us / 1e6 / seconds) * 100,
    };
    log(JSON.stringify(row));
    return [row];
  } finally {
    await lg?.close();
    await server.close();
  }
}

/**
 * Asks a Node server started with bench/gc-on-signal.cjs for a full garbage collection; resolves with
 * its RSS and live heap after it, or null when the server is not a Node process with the preload.
 */
async function collectGarbage(server, file) {
  const lines = () => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []);
  const before = lines();
  if (!before.length) return null;
  process.kill(server.pid, 'SIGUSR2');
  for (let i = 0; i < 100; i++) {
    await sleep(50);
    const now = lines();
    if (now.length > before.length) return JSON.parse(now[now.length - 1]);
  }
  throw new Error(`${server.proto}: no answer to a garbage collection request in 5 s`);
}

async function s3(kind) {
  // Every Node server loads bench/gc-on-signal.cjs here (through NODE_OPTIONS, which Herald's launcher
  // passes on too), so its memory is also read after a full collection.
  const gcFile = join(mkdtempSync(join(tmpdir(), 'bench-gc-')), 'gc.jsonl');
  const env = { NODE_OPTIONS: process.env.NODE_OPTIONS, BENCH_GC_FILE: process.env.BENCH_GC_FILE };
  process.env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --require=${JSON.stringify(join(ROOT, 'bench', 'gc-on-signal.cjs'))}`.trim();
  process.env.BENCH_GC_FILE = gcFile;
  let server;
  try {
    server = await SERVER_KINDS[kind]({ idle: true });
  } finally {
    for (const [k, v] of Object.entries(env)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  }
  try {
    await sleep(500);
    // The base is read after a collection (when the server can be asked), so the startup's garbage is
    // not in it, for any server.
    const gcBase = await collectGarbage(server, gcFile);
    const base = procStats(server.pid).rss;
    // What the server makes its Redis hold per connection too (channel subscriptions; for Webdis, a
    // Redis connection per socket), read beside it.
    const redisBase = server.redisPid && procStats(server.redisPid).rss;
    const conns = Math.min(CFG.s3Conns, server.maxIdleConnections ?? Infinity);
    // The setup is a connection storm (the load generator keeps 200 sockets connecting at a time, each
    // subscribing as soon as it is open): the CPU the server (and its Redis) spent until every socket
    // was subscribed, per connection. Read in clock ticks (10 ms), over a setup of a second or more.
    const cpuBefore = procStats(server.pid).cpuUs;
    const redisCpuBefore = server.redisPid && procStats(server.redisPid).cpuUs;
    const lg = await startLoadgen(server, conns, 'each');
    const setupCpu = procStats(server.pid).cpuUs - cpuBefore;
    const redisSetupCpu = server.redisPid && procStats(server.redisPid).cpuUs - redisCpuBefore;
    await sleep(2000);
    const rss = procStats(server.pid).rss;
    const redisRss = server.redisPid && procStats(server.redisPid).rss;
    const gcAfter = gcBase && (await collectGarbage(server, gcFile));
    await lg.close();
    const per = (bytes) => Math.round(bytes / conns);
    const row = { scenario: 's3', server: kind, connections: conns, rss_base_mb: base / 2 ** 20, rss_mb: rss / 2 ** 20, bytes_per_connection: per(rss - base) };
    if (server.redisPid) row.redis_bytes_per_connection = per(redisRss - redisBase);
    row.setup_cpu_us_per_connection = Math.round(setupCpu / conns);
    if (server.redisPid) row.redis_setup_cpu_us_per_connection = Math.round(redisSetupCpu / conns);
    if (gcAfter) {
      // After a full collection: what stays resident, and of it the live JS heap.
      row.bytes_per_connection_after_gc = per(gcAfter.rss - base);
      row.heap_bytes_per_connection_after_gc = per(gcAfter.heapUsed - gcBase.heapUsed);
    }
    log(JSON.stringify(row));
    return [row];
  } finally {
    await server.close();
    rmSync(dirname(gcFile), { recursive: true, force: true });
  }
}

async function s4(kind) {
  // Recovery is the native protocol's: Webdis clients have none (nor have the peers).
  if (!kind.startsWith('herald') || kind === 'herald-webdis') return [];
  const server = await SERVER_KINDS[kind]();
  try {
    // Recovery needs history, so publications go through the API (the Redis engine's history function).
    const row = { scenario: 's4', server: kind, ...(await recoveryScenario({ port: server.port, apiKey: API_KEY, clients: CFG.s4Clients, messages: 100, cutSeconds: QUICK ? 1 : 5 })) };
    log(JSON.stringify(row));
    return [row];
  } finally {
    await server.close();
  }
}

function prepare() {
  // From Debian: Redis (for every peer and Herald's Redis engine), gcc (the load generator) and,
  // where Debian packages it, Webdis (measured only when installed).
  ensureDebianPackages('npm run bench', [
    { pkg: 'redis-server', present: () => onPath('redis-server') },
    { pkg: 'gcc', present: () => onPath('gcc') },
    ...(SERVERS.includes('webdis') ? [{ pkg: 'webdis', present: () => existsSync(WEBDIS), optional: true }] : []),
    // The C reference's libraries: OpenSSL (its handshake's SHA-1) and hiredis (Redis's protocol).
    ...(SERVERS.includes('floor-c')
      ? [
          { pkg: 'libssl-dev', present: () => existsSync('/usr/include/openssl/sha.h') },
          { pkg: 'libhiredis-dev', present: () => existsSync('/usr/include/hiredis/read.h') },
        ]
      : []),
  ]);
  const peers = peersDir();
  mkdirSync(peers, { recursive: true });
  execFileSync('gcc', ['-O2', '-o', join(peers, 'loadgen'), join(ROOT, 'bench', 'loadgen.c')], { stdio: 'inherit' });
  if (SERVERS.includes('floor-c')) execFileSync('gcc', ['-O2', '-o', join(peers, 'floor-c'), join(ROOT, 'bench', 'floor.c'), '-lcrypto', '-lhiredis'], { stdio: 'inherit' });
  writeFileSync(join(peers, 'package.json'), readFileSync(join(ROOT, 'bench', 'peers', 'package.json')));
  for (const f of ['naive.mjs', 'socketio.mjs', 'floor.mjs']) writeFileSync(join(peers, f), readFileSync(join(ROOT, 'bench', 'peers', f)));
  if (!existsSync(join(peers, 'node_modules', 'socket.io'))) {
    log('installing the peers (npm)');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: peers, stdio: 'inherit' });
  }
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli.js'))) execFileSync('npx', ['tsc', '-p', '.'], { cwd: ROOT, stdio: 'inherit' });
}

async function main() {
  if (cpus().length < 2) throw new Error('the benchmark needs two CPUs (server on one, load on the other)');
  prepare();
  const date = new Date().toISOString().replace(/[:]/g, '-').slice(0, 19);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const file = join(ROOT, 'bench', 'results', `${date}${QUICK ? '-quick' : ''}.jsonl`);
  const machine = {
    scenario: 'machine',
    cpu: cpus()[0].model,
    cpus: cpus().length,
    node: process.version,
    redis: spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    quick: QUICK,
    date: new Date().toISOString(),
    // How Herald was started: Node's flags when BENCH_NODE_ARGS replaced the `herald` command's, and
    // its ping interval.
    herald_node_args: process.env.BENCH_NODE_ARGS || null,
    herald_ping_interval: HERALD_PING,
    // The load generator never sleeping (a development switch, see bench/loadgen.c).
    loadgen_busy_poll: BUSY_POLL,
    loadgen_nap_us: BUSY_POLL ? null : NAP_US,
    herald_tokens: TOKENS,
  };
  appendFileSync(file, JSON.stringify(machine) + '\n');
  const rows = [machine];
  const scenarios = { s1, s2, s3, s4 };
  const record = (row) => {
    rows.push(row);
    appendFileSync(file, JSON.stringify(row) + '\n');
  };
  for (const name of ONLY) {
    // s2's tail moves with the machine from minute to minute: it runs in rounds, every other round
    // in the opposite order, so each server is measured early and late (the report takes the mean).
    const rounds = name === 's2' ? S2_ROUNDS : 1;
    // The first s2 measurement of a run came out a few tenths of a millisecond worse at p99 whichever
    // server it measured (docs/performance.md, Method): one pass of the first server goes before the
    // rounds, kept in the results as a warm-up and left out of the tables.
    if (name === 's2') {
      try {
        log(`s2 ${SERVERS[0]} (warm-up pass, not counted)`);
        for (const row of await s2(SERVERS[0])) record({ ...row, round: 0, warm_up: true });
      } catch (err) {
        log(`s2 warm-up pass: ${String(err.message ?? err).slice(0, 300)}`);
      }
    }
    for (let round = 1; round <= rounds; round++) {
      for (const kind of round % 2 ? SERVERS : [...SERVERS].reverse()) {
        const tag = rounds > 1 ? { round } : {};
        try {
          log(`${name} ${kind}${rounds > 1 ? ` (round ${round} of ${rounds})` : ''}`);
          for (const row of await scenarios[name](kind)) record({ ...row, ...tag });
        } catch (err) {
          record({ scenario: name, server: kind, ...tag, error: String(err.message ?? err).slice(0, 300) });
          log(JSON.stringify(rows.at(-1)));
        }
      }
    }
  }
  // Only a full run (every scenario and server, all rates, the load generator as it runs by default)
  // replaces the headline table; quick, partial, busy-polling and other-nap runs are for development.
  const full = !QUICK && !TOKENS && !opts.only && !opts.servers && !opts.rates && !BUSY_POLL && NAP_US === NAP_DEFAULT;
  if (full) writeReport(rows, file);
  // The run's tables, as the headline has them, whatever the run was.
  console.log(reportLines(rows, file).join('\n'));
  log(`results: ${file}${full ? '' : ' (a quick, partial, token or busy-polling run, or one with LOADGEN_NAP_US set otherwise: docs/performance.md left as it is)'}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
