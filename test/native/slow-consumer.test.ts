// A client that stops reading while large publications flow is cut off (close 3008, or its TCP
// connection dropped) once its queue passes client.queue_max_size, instead of growing the server's
// memory; the other subscribers keep receiving everything.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Socket } from 'node:net';
import { client, collect, openNamespace, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

let node: TestNode;
before(async () => {
  node = await startNode({
    client: { queue_max_size: 65536 },
    channel: { namespaces: [openNamespace('big')] },
  });
});
after(() => node.close());

const numClients = async () => (await node.api.info()).nodes[0]!.num_clients as number;

test('a client that stops reading is disconnected with 3008; memory stays bounded; others keep receiving', async () => {
  const healthy = client(node, { token: await userToken('healthy') });
  const sub = healthy.newSubscription('big:feed');
  const got = collect(sub);
  sub.subscribe();
  healthy.connect();
  await sub.ready(3000);

  const slow = await RawClient.open(node.wsUrl);
  await slow.connect({ token: await userToken('slow') });
  await slow.call('subscribe', { channel: 'big:feed' });
  assert.equal(await numClients(), 2);
  const socket = (slow.ws as unknown as { _socket: Socket })._socket;
  socket.pause();

  const payload = 'x'.repeat(32 * 1024);
  const heapBefore = process.memoryUsage().heapUsed;
  let published = 0;
  let cutAt = 0;
  // Up to 64 MiB of publications: far beyond what kernel buffers and a 64 KiB queue can hold.
  for (let i = 0; i < 2048; i++) {
    await node.herald.publish('big:feed', { i, payload });
    published++;
    // Let the outboxes flush between publications, as with publications arriving over time.
    await new Promise((resolve) => setImmediate(resolve));
    if (i % 32 === 31 && cutAt === 0 && (await numClients()) === 1) cutAt = published;
    if (cutAt > 0 && published >= cutAt + 64) break;
  }
  assert.ok(cutAt > 0, `the slow client was cut off (published ${published})`);
  const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(heapGrowth < 48 * 1024 * 1024, `heap grew by ${Math.round(heapGrowth / 1048576)} MiB`);

  // The healthy client got every publication, in order.
  await until(() => got.length === published, 10_000, `healthy client: ${published} publications (has ${got.length})`);
  assert.deepEqual(
    got.map((d) => (d as { i: number }).i),
    Array.from({ length: published }, (_, i) => i),
  );
  assert.equal(healthy.state, 'connected');

  // Reading again, the slow client finds its connection closed: 3008, or dropped (1006).
  socket.resume();
  const closed = await slow.waitClose(8000);
  assert.ok(closed.code === 3008 || closed.code === 1006, `close code ${closed.code}`);
  // What it did receive is whole and in order, without gaps.
  const offsets = slow.pushes('big:feed').map((p) => (p.data as { i: number }).i);
  assert.deepEqual(offsets, Array.from({ length: offsets.length }, (_, i) => i));
  assert.ok(offsets.length < published);
  healthy.disconnect();
});

test('a burst within the queue limit is delivered whole to a reading client', async () => {
  const r = await RawClient.open(node.wsUrl);
  await r.connect({ token: await userToken('reader') });
  await r.call('subscribe', { channel: 'big:burst' });
  const payload = 'y'.repeat(1024);
  // About 40 KiB in one turn of the event loop: one frame, under the 64 KiB queue limit.
  await Promise.all(Array.from({ length: 40 }, (_, i) => node.herald.publish('big:burst', { i, payload })));
  await r.waitFor((m) => m.push?.pub?.data?.i === 39, 3000, 'the whole burst');
  assert.deepEqual(
    r.pushes('big:burst').map((p) => p.data.i),
    Array.from({ length: 40 }, (_, i) => i),
  );
  assert.equal(r.closeInfo, undefined);
  await sleep(20);
  r.close();
});
