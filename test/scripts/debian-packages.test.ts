// scripts/debian-packages.mjs, which `npm test` (its pretest) and `npm run bench` use for what they
// need from Debian: a missing package stops the command at once with the exact line to run, unless
// it is optional; where apt-get cannot be run (not root, or none on PATH) nothing is installed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const MODULE = new URL('../../../scripts/debian-packages.mjs', import.meta.url).pathname;

/** Runs ensureDebianPackages with `needed` on a PATH holding only node and sh (so no apt-get). */
function ensure(needed: Array<{ pkg: string; installed: boolean; optional?: boolean }>) {
  const bin = mkdtempSync(join(tmpdir(), 'herald-nobin-'));
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  const list = needed.map((d) => `{ pkg: ${JSON.stringify(d.pkg)}, present: () => ${d.installed}, optional: ${Boolean(d.optional)} }`).join(', ');
  const code = `import(${JSON.stringify(MODULE)}).then((m) => { m.ensureDebianPackages('the probe', [${list}]); console.log('went on'); });`;
  return spawnSync(join(bin, 'node'), ['-e', code], { encoding: 'utf8', env: { PATH: bin } });
}

test('everything installed: the command goes on, saying nothing', () => {
  const r = ensure([{ pkg: 'redis-server', installed: true }]);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, 'went on\n');
  assert.equal(r.stderr, '');
});

test('a missing package stops the command with the exact apt-get line, naming only what is missing', () => {
  const r = ensure([
    { pkg: 'redis-server', installed: false },
    { pkg: 'gcc', installed: true },
    { pkg: 'chromium', installed: false },
  ]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^the probe needs Debian packages that are not installed: redis-server, chromium\n/);
  assert.match(r.stderr, /\n {4}sudo apt-get update && sudo apt-get install -y redis-server chromium\n/);
});

test('a missing optional package is reported and the command goes on', () => {
  const r = ensure([
    { pkg: 'redis-server', installed: true },
    { pkg: 'webdis', installed: false, optional: true },
  ]);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, 'went on\n');
  assert.match(r.stderr, /going on without webdis \(not installed: apt-get install -y webdis\)/);
});
