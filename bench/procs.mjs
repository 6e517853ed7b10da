// The benchmark's processes: free ports, servers pinned to a CPU, and how one is stopped.
import { spawn, spawnSync } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Pins this process, every thread of it (V8's helpers too), to a CPU. */
export function pinSelf(cpu) {
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { encoding: 'utf8' });
  if (pinned.status !== 0) throw new Error(`cannot pin this process to CPU ${cpu}: ${pinned.stderr || pinned.error?.message}`);
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts a process pinned to a CPU; resolves when `ready` matches its output. */
export async function startPinned(cpu, cmd, argv, { env = {}, ready, cwd } = {}) {
  const proc = spawn('taskset', ['-c', cpu, cmd, ...argv], { env: { ...process.env, ...env }, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  if (ready) {
    const end = Date.now() + 20_000;
    while (!ready.test(out)) {
      if (proc.exitCode !== null) throw new Error(`${cmd} exited: ${out}`);
      if (Date.now() > end) throw new Error(`${cmd} not ready: ${out}`);
      await sleep(20);
    }
  }
  return { proc, output: () => out };
}

/** How a server process ended, with the end of its output; undefined while it runs. */
export function exitedWith(p) {
  if (p.proc.exitCode === null && p.proc.signalCode === null) return undefined;
  return `the server exited (${p.proc.exitCode ?? p.proc.signalCode}): ${p.output().slice(-300)}`;
}

/** Stops a process started by `startPinned` (with SIGTERM first when `graceful`). */
export async function stop(p, graceful = false) {
  if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  const done = new Promise((r) => p.proc.once('exit', r));
  if (graceful) {
    // taskset execs the server, so the signal reaches it; SIGKILL if it does not stop in time.
    p.proc.kill('SIGTERM');
    if (await Promise.race([done.then(() => true), sleep(10_000).then(() => false)])) return;
  }
  p.proc.kill('SIGKILL');
  await done;
}

/** Resolves once 127.0.0.1:port accepts a connection (within 10 s). */
export async function waitPort(port) {
  const end = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise((r) => {
      const s = connect(port, '127.0.0.1');
      s.on('connect', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${port} never opened`);
    await sleep(50);
  }
}
