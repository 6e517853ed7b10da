// Real redis-server processes for tests, on free ports of 127.0.0.1, and Redis Clusters made of them.
// Never the standard port; every process is killed by the test that started it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import type { HeraldConfigInput } from '../../src/index.js';
import { startNode, type TestNode } from './herald.js';
import { tempFolder } from './temp.js';

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Every redis-server this test process started and has not stopped: killed when the process ends
 * without its `after` hooks (a test file past its timeout is ended by the runner), so none outlives
 * the run (their folders go with the test's temporary ones, temp.ts).
 */
const live = new Set<ChildProcess>();
function killLeftovers(): void {
  // A stopped (SIGSTOP) process takes SIGKILL too.
  for (const proc of live) proc.kill('SIGKILL');
  live.clear();
}
process.once('exit', killLeftovers);
for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  process.once(signal, () => {
    killLeftovers();
    process.exit(code);
  });
}

/** A running redis-server. */
export class RedisProcess {
  private proc: ChildProcess | undefined;
  readonly dir: string;

  private constructor(
    readonly port: number,
    private readonly extraArgs: string[],
  ) {
    this.dir = tempFolder(`herald-redis-${port}-`);
  }

  /** Starts a throwaway redis-server (no persistence) on a free port and waits until it answers. */
  static async start(extraArgs: string[] = []): Promise<RedisProcess> {
    const r = new RedisProcess(await freePort(), extraArgs);
    await r.spawn();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts a throwaway redis-server on a given port (one a test reserved earlier). */
  static async startOn(port: number, extraArgs: string[] = []): Promise<RedisProcess> {
    const r = new RedisProcess(port, extraArgs);
    await r.spawn();
    return r;
  }

  /** Stops the process without ending it (SIGSTOP): connections stay open and nothing is answered. */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  /** Lets a paused process run again (SIGCONT). */
  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  /** (Re)starts the process on the same port. */
  async spawn(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.extraArgs],
      { stdio: 'ignore' },
    );
    const proc = this.proc;
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    const end = Date.now() + 10_000;
    for (;;) {
      if (await ping(this.port)) return;
      if (Date.now() > end) throw new Error(`redis-server on ${this.port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Kills the process (SIGKILL: a crash, nothing saved). */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  /** Stops the process and removes its folder. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A plain client to this server (the caller quits it). */
  client(): Redis {
    return new Redis(this.port, '127.0.0.1', { lazyConnect: false, maxRetriesPerRequest: 1 });
  }
}

async function ping(port: number): Promise<boolean> {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'PING'], { encoding: 'utf8', timeout: 2000 });
  return r.stdout.trim() === 'PONG';
}

/** A Redis Cluster of real processes. */
export class RedisCluster {
  private constructor(readonly nodes: RedisProcess[]) {}

  /** Starts `masters` masters (with `replicas` replicas each) and waits for cluster_state:ok. */
  static async start(masters = 3, replicas = 0): Promise<RedisCluster> {
    const count = masters * (replicas + 1);
    const nodes: RedisProcess[] = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      nodes.push(
        await RedisProcess.start([
          '--cluster-enabled', 'yes',
          '--cluster-config-file', `nodes-${port}.conf`,
          '--cluster-node-timeout', '2000',
        ]).catch((err) => {
          throw err;
        }),
      );
    }
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    const cluster = new RedisCluster(nodes);
    await cluster.waitOk();
    if (replicas > 0) await cluster.waitReplicasSynced();
    return cluster;
  }

  /** Seed nodes as `host:port` strings. */
  get seeds(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`);
  }

  /** Waits until every live node reports cluster_state:ok. */
  async waitOk(ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      const states = this.nodes.map((n) => spawnSync('redis-cli', ['-p', String(n.port), 'CLUSTER', 'INFO'], { encoding: 'utf8', timeout: 2000 }).stdout);
      if (states.every((s) => s.includes('cluster_state:ok'))) return;
      if (Date.now() > end) throw new Error('cluster did not reach cluster_state:ok');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Waits until every replica's link to its master is up (a replica that never synced cannot fail over). */
  async waitReplicasSynced(ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      const infos = this.nodes.map((n) => spawnSync('redis-cli', ['-p', String(n.port), 'INFO', 'replication'], { encoding: 'utf8', timeout: 2000 }).stdout);
      const replicas = infos.filter((i) => i.includes('role:slave'));
      if (replicas.length > 0 && replicas.every((i) => i.includes('master_link_status:up'))) return;
      if (Date.now() > end) throw new Error('replicas did not sync');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The ports of the nodes that are masters now. */
  masterPorts(): number[] {
    return this.nodes
      .map((n) => n.port)
      .filter((p) => /role:master/.test(spawnSync('redis-cli', ['-p', String(p), 'INFO', 'replication'], { encoding: 'utf8', timeout: 2000 }).stdout));
  }

  /** The port of the master that owns a Redis key's (or channel's) slot now. */
  ownerOf(key: string): number {
    const masters = this.masterPorts();
    const slot = Number(spawnSync('redis-cli', ['-p', String(masters[0]), 'CLUSTER', 'KEYSLOT', key], { encoding: 'utf8', timeout: 2000 }).stdout.trim());
    const owner = masters.find((p) => {
      const nodes = spawnSync('redis-cli', ['-p', String(p), 'CLUSTER', 'NODES'], { encoding: 'utf8', timeout: 2000 }).stdout;
      const me = nodes.split('\n').find((l) => l.includes('myself'))!;
      return me
        .split(' ')
        .slice(8)
        .some((r) => {
          const [lo, hi] = r.split('-').map(Number);
          return slot >= lo! && slot <= (hi ?? lo)!;
        });
    });
    if (owner === undefined) throw new Error(`no master owns the slot of ${key}`);
    return owner;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

/** Starts one redis-server (and a client to it) for a test file's tests, and stops it after them. */
export function useRedis(set: (redis: RedisProcess, client: Redis) => void): void {
  let redis: RedisProcess | undefined;
  let client: Redis | undefined;
  before(async () => {
    redis = await RedisProcess.start();
    client = redis.client();
    set(redis, client);
  });
  after(async () => {
    client?.disconnect();
    await redis?.stop();
  });
}

/** What `useRedisNode` starts, set before a test file's tests. */
export interface RedisNode {
  readonly redis: RedisProcess;
  /** A plain client to that Redis. */
  readonly client: Redis;
  readonly node: TestNode;
}

/**
 * A Herald node on the Redis engine for a test file's tests: a redis-server of its own, the node on it
 * (`config` beside the engine's), and a plain client to that Redis; stopped after them, the node first.
 */
export function useRedisNode(config: HeraldConfigInput): RedisNode {
  const started = {} as { redis: RedisProcess; client: Redis; node: TestNode };
  before(async () => {
    started.redis = await RedisProcess.start();
    started.client = started.redis.client();
    started.node = await startNode({ ...config, engine: { type: 'redis', redis: { url: started.redis.url } } });
  });
  after(async () => {
    await started.node?.close();
    started.client?.disconnect();
    await started.redis?.stop();
  });
  return started;
}
