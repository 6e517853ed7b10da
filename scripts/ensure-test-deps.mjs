#!/usr/bin/env node
// Before `npm test`: the suite needs Debian's redis-server, chromium and Python client packages. As root with apt-get they are
// installed here; otherwise this stops at once and prints the exact command to run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const NEEDED = [
  { pkg: 'redis-server', present: () => onPath('redis-server') },
  { pkg: 'chromium', present: () => existsSync('/usr/bin/chromium') },
  // Python clients for the compatibility tests (Debian's, run with /usr/bin/python3).
  { pkg: 'python3-redis', present: () => pythonHas('redis') },
  { pkg: 'python3-flask', present: () => pythonHas('flask') },
  { pkg: 'python3-websocket', present: () => pythonHas('websocket') },
  { pkg: 'python3-requests', present: () => pythonHas('requests') },
];

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function pythonHas(module) {
  return existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

const missing = NEEDED.filter((d) => !d.present()).map((d) => d.pkg);
if (missing.length === 0) process.exit(0);

const line = `apt-get install -y ${missing.join(' ')}`;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || !onPath('apt-get')) {
  process.stderr.write(
    `npm test needs Debian packages that are not installed: ${missing.join(', ')}\n` +
      `Install them, then run npm test again:\n\n    sudo apt-get update && sudo ${line}\n\n`,
  );
  process.exit(1);
}
process.stderr.write(`Installing test dependencies: ${missing.join(', ')} (apt-get)\n`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
try {
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
} catch {
  process.stderr.write(`apt-get failed. Run it by hand:\n\n    apt-get update && ${line}\n\n`);
  process.exit(1);
}
const still = NEEDED.filter((d) => !d.present()).map((d) => d.pkg);
if (still.length) {
  process.stderr.write(`still missing after apt-get: ${still.join(', ')}\n`);
  process.exit(1);
}
