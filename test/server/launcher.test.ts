// The `herald` command (bin/herald): on one CPU it starts Node with --single-threaded, so V8's helper
// threads do not take turns with the event loop; with more CPUs it starts Node as it is. Either way
// the node serves clients.
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
    assert.deepEqual(nodeFlags(node), ['--single-threaded']);
    await publishWorks(node);
  } finally {
    await node.kill('SIGTERM');
  }
});

test('on two CPUs, the herald command starts Node without extra flags', async () => {
  const node = await spawnHerald({}, ['taskset', '-c', '0,1', LAUNCHER]);
  try {
    assert.deepEqual(nodeFlags(node), []);
    await publishWorks(node);
  } finally {
    await node.kill('SIGTERM');
  }
});
