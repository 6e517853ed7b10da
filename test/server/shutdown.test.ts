// The `herald` command's exit status on a signal, and what it says when that status is 1: a node
// whose Redis stopped answering cannot close cleanly, and the operator is told why it exited.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawnHerald } from '../helpers/process.js';
import { RedisProcess } from '../helpers/redis.js';

let redis: RedisProcess;
before(async () => {
  redis = await RedisProcess.start();
});
after(async () => {
  redis.resume();
  await redis.stop();
});

async function pausedNode() {
  const node = await spawnHerald({ engine: { type: 'redis', redis: { url: redis.url } }, shutdown_timeout: '500ms' });
  const exit = new Promise<number | null>((resolve) => node.proc.once('exit', (code) => resolve(code)));
  redis.pause();
  return { node, exit };
}

test('a node that cannot stop within shutdown_timeout exits 1 and says so', async () => {
  const { node, exit } = await pausedNode();
  try {
    const started = Date.now();
    node.proc.kill('SIGTERM');
    assert.equal(await exit, 1);
    assert.ok(Date.now() - started < 3000, 'it did not wait past the timeout');
    assert.match(node.output(), /herald: SIGTERM, shutting down/);
    assert.match(node.output(), /not stopped within shutdown_timeout \(500 ms\), exiting now \(exit 1\)/);
  } finally {
    redis.resume();
    await node.kill();
  }
});

test('a second signal while stopping exits 1 at once and says so', async () => {
  const { node, exit } = await pausedNode();
  try {
    node.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    node.proc.kill('SIGINT');
    assert.equal(await exit, 1);
    assert.match(node.output(), /herald: SIGINT again, exiting now \(exit 1\)/);
  } finally {
    redis.resume();
    await node.kill();
  }
});
