// What the benchmark reads from /proc about the server under test: its own CPU time, memory and
// write syscalls, and what its CPU did besides it. Tick-based, as the kernel keeps them.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU time (µs), RSS (bytes) and write syscalls (write, writev) of a process and its threads. */
export function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const userUs = (Number(fields[11]) * 1e6) / TICKS;
  const sysUs = (Number(fields[12]) * 1e6) / TICKS;
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  const writes = Number(/syscw:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
  return { cpuUs: userUs + sysUs, userUs, sysUs, rss, writes };
}

/**
 * A CPU's time by kind from /proc/stat, in µs: busy (the server, and anything else that ran there),
 * idle (the server waited rather than worked), and of the busy time the softirq work (on loopback,
 * mostly the receive side of the server's own writes, counted in its CPU when run in its context).
 */
export function cpuTimes(cpu) {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `));
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map((v) => (Number(v) * 1e6) / TICKS);
  return { busy: user + nice + system + irq + softirq + steal, idle: idle + iowait, softirq };
}
