// Herald nodes as real child processes (so a test can kill one with SIGKILL), and a tiny TCP load
// balancer in front of several nodes, as a production deployment would have.
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { HeraldConfigInput } from '../../src/index.js';
import { testConfig } from './herald.js';
import { tempFile } from './temp.js';

const BIN = new URL('../../../bin/herald.js', import.meta.url).pathname;
/** The `herald` command users run (a shell launcher that starts Node on bin/herald.js). */
export const LAUNCHER = new URL('../../../bin/herald', import.meta.url).pathname;

/** A Herald node running as a child process. */
export interface HeraldProcess {
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  readonly proc: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Kills it (SIGKILL by default: a crash) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `bin/herald.js` with the test config plus `extra`, on a free port; `command` runs it another
 * way (e.g. `['taskset', '-c', '0', LAUNCHER]`), the config flags appended.
 */
export async function spawnHerald(extra: HeraldConfigInput = {}, command: string[] = [process.execPath, BIN]): Promise<HeraldProcess> {
  const file = tempFile('herald.json', JSON.stringify(testConfig({ log_level: 'warn', ...extra })));
  const proc = spawn(command[0]!, [...command.slice(1), '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const port = await listeningPort(proc, () => out);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/connection/websocket`,
    proc,
    output: () => out,
    kill: async (signal = 'SIGKILL') => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill(signal);
      await exited;
    },
  };
}

/** The port a started `herald` command says it listens on (in `output`, its stderr at least), within 15 s. */
export async function listeningPort(proc: ChildProcess, output: () => string): Promise<number> {
  const end = Date.now() + 15_000;
  for (;;) {
    const m = /listening on http:\/\/[^:]+:(\d+)/.exec(output());
    if (m) return Number(m[1]);
    if (proc.exitCode !== null) throw new Error(`herald exited: ${output()}`);
    if (Date.now() > end) throw new Error(`herald did not start: ${output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP load balancer on 127.0.0.1: each new connection goes to the first backend that accepts it. */
export class TcpBalancer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly backends: () => number[]) {
    this.server = createServer((client) => this.route(client));
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  private route(client: Socket, tried = 0): void {
    const list = this.backends();
    if (tried >= list.length) return void client.destroy();
    const upstream = createConnection({ host: '127.0.0.1', port: list[tried]! });
    let connected = false;
    upstream.once('error', () => {
      if (!connected) this.route(client, tried + 1);
    });
    upstream.once('connect', () => {
      connected = true;
      this.sockets.add(client);
      this.sockets.add(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      const done = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('close', done);
      upstream.on('close', done);
      client.on('error', done);
      upstream.on('error', done);
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
