// The `herald` command (bin/herald): on one CPU it starts Node with --single-threaded, so V8's helper
// threads do not take turns with the event loop; on any number of CPUs it caps V8's young generation
// at 4 MB a semi-space, unless NODE_OPTIONS sets that size itself. Either way the node serves clients.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { API_KEY } from '../helpers/herald.js';
import { LAUNCHER, spawnHerald, type HeraldProcess } from '../helpers/process.js';

const nodeFlags = (node: HeraldProcess): string[] => {
  // The launcher execs Node, so the child's pid is Node's.
  const argv = readFileSync(`/proc/${node.proc.pid}/cmdline`, 'utf8').split('\0');
  return argv.slice(1, argv.findIndex((a) => a.endsWith('herald.js')));
};

async function publishWorks(node: HeraldProcess): Promise<void> {
  const res = await fetch(`${node.url}/api/info`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: '{}' });
  assert.equal(res.status, 200);
  assert.ok(((await res.json()) as { result: { nodes: unknown[] } }).result.nodes.length >= 1);
}

test('pinned to one CPU, the herald command starts Node with --single-threaded', async () => {
  execFileSync('taskset', ['--version']);
  const node = await spawnHerald({}, ['taskset', '-c', '0', LAUNCHER]);
  try {
    assert.deepEqual(nodeFlags(node), ['--single-threaded', '--max-semi-space-size=4']);
    await publishWorks(node);
  } finally {
    await node.kill('SIGTERM');
  }
});

test('on two CPUs, the herald command starts Node with the young generation capped only', async () => {
  const node = await spawnHerald({}, ['taskset', '-c', '0,1', LAUNCHER]);
  try {
    assert.deepEqual(nodeFlags(node), ['--max-semi-space-size=4']);
    await publishWorks(node);
  } finally {
    await node.kill('SIGTERM');
  }
});

test('NODE_OPTIONS that sizes the young generation keeps its own size', async () => {
  const node = await spawnHerald({}, ['env', 'NODE_OPTIONS=--max-semi-space-size=8', 'taskset', '-c', '0,1', LAUNCHER]);
  try {
    assert.deepEqual(nodeFlags(node), []);
    assert.match(readFileSync(`/proc/${node.proc.pid}/environ`, 'utf8'), /(^|\0)NODE_OPTIONS=--max-semi-space-size=8\0/);
    await publishWorks(node);
  } finally {
    await node.kill('SIGTERM');
  }
});
