// GET /ready, for a load balancer's readiness check: 200 while the engine answers, 503 while Redis is
// stopped, paused or gone; /health (liveness) stays 200 throughout.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startNode } from '../helpers/herald.js';
import { RedisProcess } from '../helpers/redis.js';

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('/ready follows Redis: 200, 503 while it does not answer (paused, then killed), 200 once it is back', async () => {
  const redis = await RedisProcess.start();
  const node = await startNode({ engine: { type: 'redis', redis: { url: redis.url } } });
  try {
    assert.deepEqual(await get(`${node.url}/ready`), { status: 200, body: { engine: 'redis' } });
    redis.pause();
    const started = Date.now();
    const paused = await get(`${node.url}/ready`);
    assert.equal(paused.status, 503);
    assert.equal(paused.body.engine, 'redis');
    assert.match(String(paused.body.error), /./);
    assert.ok(Date.now() - started < 3000, 'answered within its wait, not hung with Redis');
    assert.equal((await get(`${node.url}/health`)).status, 200, 'liveness is not readiness');
    redis.resume();
    const end = Date.now() + 10_000;
    while ((await get(`${node.url}/ready`)).status !== 200) {
      assert.ok(Date.now() < end, 'ready again once Redis answers');
      await new Promise((r) => setTimeout(r, 100));
    }
    await redis.stop();
    const gone = await get(`${node.url}/ready`);
    assert.equal(gone.status, 503);
    assert.match(String(gone.body.error), /redis unavailable/);
  } finally {
    redis.resume();
    await node.close();
    await redis.stop();
  }
});

test('/ready with the memory engine: 200', async () => {
  const node = await startNode();
  try {
    assert.deepEqual(await get(`${node.url}/ready`), { status: 200, body: { engine: 'memory' } });
  } finally {
    await node.close();
  }
});
