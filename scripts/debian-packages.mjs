// Debian packages that `npm test` and the benchmark need from the system. As root with apt-get they
// are installed; otherwise the caller stops at once with the exact command to run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** True when `cmd` is on PATH. */
export function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** True when Debian's Python (/usr/bin/python3, not another on PATH) imports `module`. */
export function pythonHas(module) {
  return existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Makes sure the packages `needed` lists are installed (each `{ pkg, present, optional }`, `present()`
 * true when installed). Missing ones are installed with apt-get when running as root; a required one
 * that is still missing then (or at once, when apt-get cannot be run) stops the process with status 1
 * and the command to run. A missing `optional` one is tried too, and only reported if it cannot be had.
 * `options.root` and `options.aptGet` (which apt-get to run) default to the real ones.
 */
export function ensureDebianPackages(purpose, needed, options = {}) {
  const root = options.root ?? (typeof process.getuid === 'function' && process.getuid() === 0);
  const aptGet = options.aptGet ?? 'apt-get';
  const missing = needed.filter((d) => !d.present());
  if (missing.length === 0) return;
  if (root && onPath(aptGet)) {
    process.stderr.write(`${purpose}: installing ${names(missing, ', ')} (apt-get)\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // A stale or unreachable package list: the installs below say whether it matters.
    spawnSync(aptGet, ['update', '-qq'], { stdio: 'inherit', env });
    // One package at a time, so one that Debian does not carry does not stop the others.
    for (const d of missing) spawnSync(aptGet, ['install', '-y', '-qq', '--no-install-recommends', d.pkg], { stdio: 'inherit', env });
  }
  const still = missing.filter((d) => !d.present());
  const required = still.filter((d) => !d.optional);
  const optional = still.filter((d) => d.optional);
  if (optional.length) {
    process.stderr.write(`${purpose}: going on without ${names(optional, ', ')} (not installed: sudo apt-get install -y ${names(optional, ' ')})\n`);
  }
  if (required.length === 0) return;
  process.stderr.write(
    `${purpose} needs Debian packages that are not installed: ${names(required, ', ')}\n` +
      `Install them, then run ${purpose} again:\n\n    sudo apt-get update && sudo apt-get install -y ${names(required, ' ')}\n\n`,
  );
  process.exit(1);
}

const names = (list, sep) => list.map((d) => d.pkg).join(sep);
