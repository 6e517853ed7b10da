// A burst of publications larger than client.queue_max_size that reaches a node at once (one API
// batch; with Redis, a pipeline read in one go) goes out whole to subscribers that read: the limit is
// for clients that do not read, not for what the node queued itself before its first write.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { API_KEY, openNamespace, sign, startNode, type TestNode } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';
import { RedisProcess } from '../helpers/redis.js';

let redis: RedisProcess;
before(async () => {
  redis = await RedisProcess.start();
});
after(() => redis.stop());

const BURST = 20_000; // 100-byte publications: about 2 MB per subscriber, twice the 1 MiB default

async function subscribers(node: TestNode, n: number): Promise<RawClient[]> {
  const out: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await RawClient.open(node.wsUrl);
    await c.connect({ token: await sign({ sub: `reader${i}` }) });
    await c.call('subscribe', { channel: 'feed:burst' });
    out.push(c);
  }
  return out;
}

async function everyOneGotIt(clients: RawClient[]): Promise<void> {
  const end = Date.now() + 20_000;
  while (clients.some((c) => c.pushes('feed:burst').length < BURST) && Date.now() < end && !clients.some((c) => c.closeInfo)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const c of clients) {
    assert.equal(c.closeInfo, undefined, `a reader was cut off: ${JSON.stringify(c.closeInfo)}`);
    const got = c.pushes('feed:burst').map((pub) => (pub.data as { i: number }).i);
    assert.equal(got.length, BURST);
    assert.ok(got.every((v, i) => v === i), 'in order');
  }
}

test(`memory engine: one API batch of ${BURST} publications reaches five readers whole (queue_max_size 1 MiB)`, async () => {
  const node = await startNode({ channel: { namespaces: [openNamespace('feed')] } });
  const clients = await subscribers(node, 5);
  try {
    assert.equal(node.herald.config.client.queue_max_size, 1_048_576);
    const pad = 'x'.repeat(70);
    const commands = Array.from({ length: BURST }, (_, i) => ({ publish: { channel: 'feed:burst', data: { i, pad } } }));
    const res = await fetch(`${node.url}/api/batch`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ commands }) });
    assert.equal(res.status, 200);
    await everyOneGotIt(clients);
  } finally {
    for (const c of clients) c.ws.terminate();
    await node.close();
  }
});

test(`Redis engine: ${BURST} PUBLISHes pipelined by a Redis client reach five readers whole`, async () => {
  const node = await startNode({ engine: { type: 'redis', redis: { url: redis.url } }, channel: { namespaces: [openNamespace('feed')] } });
  const clients = await subscribers(node, 5);
  const publisher = redis.client();
  try {
    const pad = 'x'.repeat(70);
    const pipeline = publisher.pipeline();
    // A plain PUBLISH into the channel's Redis name, as any Redis client may (docs/operations.md).
    for (let i = 0; i < BURST; i++) pipeline.publish('herald{feed:burst}.p', JSON.stringify({ i, pad }));
    await pipeline.exec();
    await everyOneGotIt(clients);
  } finally {
    publisher.disconnect();
    for (const c of clients) c.ws.terminate();
    await node.close();
  }
});
