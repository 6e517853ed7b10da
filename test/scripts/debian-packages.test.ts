// scripts/debian-packages.mjs, which `npm test` (its pretest) and `npm run bench` use for what they
// need from Debian: as root, missing packages are installed with apt-get (here a stand-in script);
// a required package still missing stops the command at once with the exact line to run, and an
// optional one is only reported.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const MODULE = new URL('../../../scripts/debian-packages.mjs', import.meta.url).pathname;
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Need {
  pkg: string;
  installed?: boolean;
  optional?: boolean;
}

/**
 * Runs ensureDebianPackages on a PATH holding only node and sh. A package counts as installed when it
 * starts so or once the stand-in apt-get (used when `root`) has installed it; the stand-in fails for
 * the packages in `unavailable` and logs every call.
 */
function ensure(needed: Need[], { root = false, unavailable = [] as string[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'herald-debian-'));
  dirs.push(dir);
  const bin = join(dir, 'bin');
  const installed = join(dir, 'installed');
  mkdirSync(bin);
  mkdirSync(installed);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  for (const d of needed) if (d.installed) writeFileSync(join(installed, d.pkg), '');
  const aptGet = join(dir, 'apt-get');
  writeFileSync(
    aptGet,
    `#!/bin/sh\necho "$*" >> ${dir}/apt.log\n` +
      `if [ "$1" = install ]; then for p in "$@"; do :; done; case " ${unavailable.join(' ')} " in *" $p "*) exit 100;; esac; : > ${installed}/"$p"; fi\n`,
  );
  chmodSync(aptGet, 0o755);
  const list = needed
    .map((d) => `{ pkg: ${JSON.stringify(d.pkg)}, present: () => existsSync(${JSON.stringify(join(installed, d.pkg))}), optional: ${Boolean(d.optional)} }`)
    .join(', ');
  const code =
    `import { existsSync } from 'node:fs';\n` +
    `const m = await import(${JSON.stringify(MODULE)});\n` +
    `m.ensureDebianPackages('the probe', [${list}], { root: ${root}, aptGet: ${JSON.stringify(aptGet)} });\n` +
    `console.log('went on');`;
  const r = spawnSync(join(bin, 'node'), ['--input-type=module', '-e', code], { encoding: 'utf8', env: { PATH: bin } });
  const log = existsSync(join(dir, 'apt.log')) ? readFileSync(join(dir, 'apt.log'), 'utf8').trim().split('\n') : [];
  return { ...r, apt: log.map((l) => l.replace(/ -y -qq --no-install-recommends/, '')) };
}

test('everything installed: the command goes on, saying nothing and installing nothing', () => {
  const r = ensure([{ pkg: 'redis-server', installed: true }], { root: true });
  assert.equal(r.status, 0);
  assert.equal(r.stdout, 'went on\n');
  assert.equal(r.stderr, '');
  assert.deepEqual(r.apt, []);
});

test('not root: missing required packages stop the command with the exact line, which leaves out an optional one', () => {
  const r = ensure([
    { pkg: 'redis-server' },
    { pkg: 'gcc', installed: true },
    { pkg: 'chromium' },
    { pkg: 'webdis', optional: true },
  ]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.deepEqual(r.apt, [], 'nothing is installed without root');
  assert.match(r.stderr, /^the probe: going on without webdis \(not installed: sudo apt-get install -y webdis\)\n/m);
  assert.match(r.stderr, /^the probe needs Debian packages that are not installed: redis-server, chromium\n/m);
  assert.match(r.stderr, /\n {4}sudo apt-get update && sudo apt-get install -y redis-server chromium\n/);
});

test('not root: a missing optional package alone is reported and the command goes on', () => {
  const r = ensure([{ pkg: 'redis-server', installed: true }, { pkg: 'webdis', optional: true }]);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, 'went on\n');
  assert.match(r.stderr, /going on without webdis \(not installed: sudo apt-get install -y webdis\)/);
});

test('root: the missing packages are installed, one apt-get install each, and the command goes on', () => {
  const r = ensure([{ pkg: 'redis-server' }, { pkg: 'gcc', installed: true }, { pkg: 'webdis', optional: true }], { root: true });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'went on\n');
  assert.deepEqual(r.apt, ['update -qq', 'install redis-server', 'install webdis']);
  assert.equal(r.stderr, 'the probe: installing redis-server, webdis (apt-get)\n');
});

test('root: a required package apt-get cannot install stops the command; the others are still installed', () => {
  const r = ensure([{ pkg: 'chromium' }, { pkg: 'redis-server' }], { root: true, unavailable: ['chromium'] });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.deepEqual(r.apt, ['update -qq', 'install chromium', 'install redis-server']);
  assert.match(r.stderr, /needs Debian packages that are not installed: chromium\n/);
  assert.match(r.stderr, /sudo apt-get install -y chromium\n/);
});

test('root: an optional package apt-get cannot install is reported and the command goes on', () => {
  const r = ensure([{ pkg: 'redis-server' }, { pkg: 'webdis', optional: true }], { root: true, unavailable: ['webdis'] });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'went on\n');
  assert.match(r.stderr, /going on without webdis/);
});
