#!/usr/bin/env node
// Runs the compiled test files (dist/test/**/*.test.js whose .ts source still exists) with Node's
// test runner. Extra arguments narrow the run to files whose path contains one of them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const compiled = join(root, 'dist', 'test');
const filters = process.argv.slice(2);

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );
}

const files = walk(compiled)
  .filter((f) => existsSync(join(root, relative(join(root, 'dist'), f)).replace(/\.js$/, '.ts')))
  .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
  .sort();
if (files.length === 0) {
  process.stderr.write('no test files found (did `tsc` run?)\n');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=120000', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
