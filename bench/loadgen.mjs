// The benchmark's side of the load generator (bench/loadgen.c): starts it, waits while its sockets
// subscribe (failing at once when the server exits, and when none more subscribed for 20 s), and reads
// its stats on demand.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';


/**
 * Starts the load generator `bin` pinned to `cpu`, with `conns` subscribers of `server` (its `port`,
 * `proto` and, when it has one, `gone()`), and waits until all are subscribed. Resolves with
 * `mark()` (the stats since the last mark, starting a new period), `peek()` (the same, the period going
 * on) and `close()`.
 */
export async function startLoadgen(cpu, bin, server, conns, mode) {
  const p = spawn('taskset', ['-c', cpu, bin, '127.0.0.1', String(server.port), server.proto, String(conns), mode], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = createInterface({ input: p.stdout });
  const queue = [];
  let waiting;
  lines.on('line', (line) => (waiting ? (waiting(line), (waiting = undefined)) : queue.push(line)));
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const next = (ms) =>
    new Promise((resolve, reject) => {
      if (queue.length) return resolve(queue.shift());
      const t = setTimeout(() => reject(new Error(`loadgen timed out: ${err.slice(-500)}`)), ms);
      waiting = (l) => (clearTimeout(t), resolve(l));
    });
  // Wait for every socket to subscribe while the count keeps rising (asked with MARK, which answers
  // ready=<n> before READY too); a server that exits is reported at once, and one that stops taking
  // subscribers once none more came for 20 s, each with how far it got.
  const stallMs = 20_000;
  let subscribed = -1;
  let progressAt = Date.now();
  let asked = 1;
  p.stdin.write('MARK\n');
  try {
    for (;;) {
      const line = await next(stallMs);
      if (line.startsWith('READY')) break;
      if (!line.startsWith('STATS')) throw new Error(`loadgen: ${line} ${err}`);
      asked--;
      const now = Number(/ready=(\d+)/.exec(line)?.[1] ?? 0);
      const open = Number(/open=(\d+)/.exec(line)?.[1] ?? 0);
      if (now > subscribed) (subscribed = now), (progressAt = Date.now());
      // A server that has exited takes no more subscribers: say so now rather than after the stall.
      const gone = now < conns ? server.gone?.() : undefined;
      if (gone) throw new Error(`only ${subscribed} of ${conns} sockets subscribed (${open} open); ${gone}`);
      if (Date.now() - progressAt > stallMs) {
        throw new Error(`only ${subscribed} of ${conns} sockets subscribed (${open} open), none more in ${stallMs / 1000} s; ${err.slice(-300)}`);
      }
      await sleep(1000);
      asked++;
      p.stdin.write('MARK\n');
    }
    for (; asked > 0; asked--) await next(10_000); // the answers to MARKs sent before READY
  } catch (e) {
    // Nothing may outlive a failed start: a live child keeps the bench from exiting.
    p.kill('SIGKILL');
    throw e;
  }
  const ask = async (cmd) => {
    p.stdin.write(`${cmd}\n`);
    const line = await next(10_000);
    return Object.fromEntries(line.replace(/^STATS /, '').split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
  };
  return {
    /** The stats since the last mark; a new period starts. */
    mark: () => ask('MARK'),
    /** The stats since the last mark, the period going on. */
    peek: () => ask('PEEK'),
    close: async () => {
      p.stdin.write('QUIT\n');
      await new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
    },
  };
}
