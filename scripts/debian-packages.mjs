// Debian packages that `npm test` and the benchmark need from the system. As root with apt-get they
// are installed; otherwise the caller stops at once with the exact command to run.
import { execFileSync, spawnSync } from 'node:child_process';
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
 * true when installed). Missing ones are installed with apt-get when running as root; otherwise, or
 * when apt-get fails, the process exits with status 1 after printing the command to run. A missing
 * `optional` package is tried too, but only reported if it cannot be had.
 */
export function ensureDebianPackages(purpose, needed) {
  const missing = () => needed.filter((d) => !d.present());
  const required = (list) => list.filter((d) => !d.optional).map((d) => d.pkg);
  const initial = missing();
  if (initial.length === 0) return;
  const line = `apt-get install -y ${initial.map((d) => d.pkg).join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !onPath('apt-get')) {
    if (required(initial).length === 0) return report(purpose, initial);
    process.stderr.write(
      `${purpose} needs Debian packages that are not installed: ${initial.map((d) => d.pkg).join(', ')}\n` +
        `Install them, then run ${purpose} again:\n\n    sudo apt-get update && sudo ${line}\n\n`,
    );
    process.exit(1);
  }
  process.stderr.write(`${purpose}: installing ${initial.map((d) => d.pkg).join(', ')} (apt-get)\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  } catch {
    // A stale or unreachable list: the install below says whether it matters.
  }
  // One package at a time, so an optional one that Debian does not carry does not stop the others.
  for (const d of initial) spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', d.pkg], { stdio: 'inherit', env });
  const still = missing();
  if (required(still).length) {
    process.stderr.write(`still missing after apt-get: ${required(still).join(', ')}. Run it by hand:\n\n    apt-get update && ${line}\n\n`);
    process.exit(1);
  }
  if (still.length) report(purpose, still);
}

function report(purpose, optional) {
  process.stderr.write(`${purpose}: going on without ${optional.map((d) => d.pkg).join(', ')} (not installed: apt-get install -y ${optional.map((d) => d.pkg).join(' ')})\n`);
}
