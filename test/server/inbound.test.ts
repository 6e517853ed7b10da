// A client that sends faster than its messages can be handled (here: Redis stalls, so each publish
// waits) is not read past a bound: its messages wait in its own TCP window, not in the server's
// memory. Once Redis answers again, every message is handled, in order. An HTTP streaming client's
// commands, which come by /emulation, are held unanswered past the same bound.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { once, openNamespace, startNode, until, type TestNode } from '../helpers/herald.js';
import { openHttpStream, RawClient, sleep } from '../helpers/raw.js';
import { RedisProcess } from '../helpers/redis.js';

let redis: RedisProcess;
let node: TestNode;
const COUNT = 1500;
const PAD = 'x'.repeat(30_000);

before(async () => {
  redis = await RedisProcess.start();
  node = await startNode({
    engine: { type: 'redis', redis: { url: redis.url, command_timeout: '60s' } },
    client: { allow_anonymous_connect_without_token: true, queue_max_size: 64 * 1024 * 1024, http_stream: { enabled: true } },
    channel: { namespaces: [openNamespace('flood', { allow_publish_for_client: true, allow_publish_for_anonymous: true })] },
    ws4redis: { enabled: true, allowed_channels: ['subscribe-broadcast', 'publish-broadcast'], queue_max_size: 64 * 1024 * 1024 },
  });
});

after(async () => {
  redis?.resume();
  await node?.close();
  await redis?.stop();
});

async function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await once(ws, 'open');
  return ws;
}

/** Sends `frames` while Redis is stopped; returns what the client still held unsent 1.5 s later. */
async function floodWhileStalled(ws: WebSocket, frames: string[]): Promise<number> {
  redis.pause();
  try {
    for (const f of frames) ws.send(f);
    await new Promise((r) => setTimeout(r, 1500));
    return ws.bufferedAmount;
  } finally {
    redis.resume();
  }
}

test('native: a client flooding publishes while Redis stalls is not read past a bound; all are published, in order, once Redis answers', async () => {
  const sub = await RawClient.open(node.wsUrl);
  await sub.connect();
  assert.equal((await sub.call('subscribe', { channel: 'flood:n' })).error, undefined);
  const pub = await open(node.wsUrl);
  pub.send(JSON.stringify({ id: 1, connect: {} }));
  const frames = Array.from({ length: COUNT }, (_, i) => JSON.stringify({ id: i + 2, publish: { channel: 'flood:n', data: { i, pad: PAD } } }));
  const unsent = await floodWhileStalled(pub, frames);
  const total = frames.reduce((n, f) => n + f.length, 0);
  assert.ok(unsent > total / 4, `the server went on reading: ${unsent} of ${total} bytes left unsent`);
  await until(() => sub.pushes('flood:n').length === COUNT, 30_000, 'every publication');
  assert.deepEqual(sub.pushes('flood:n').map((p) => p.data.i), Array.from({ length: COUNT }, (_, i) => i));
  pub.close();
  sub.close();
});

test('ws4redis: a browser flooding messages while Redis stalls is not read past a bound; all are published, in order, once Redis answers', async () => {
  const url = `ws://127.0.0.1:${node.port}/ws/flood`;
  const got: number[] = [];
  const sub = await open(`${url}?subscribe-broadcast`);
  sub.on('message', (data: Buffer) => got.push(Number(data.toString('utf8', 0, 12).split(' ')[0])));
  await new Promise((r) => setTimeout(r, 200)); // its subscription reaches Redis
  const pub = await open(`${url}?publish-broadcast`);
  const frames = Array.from({ length: COUNT }, (_, i) => `${i} ${PAD}`);
  const unsent = await floodWhileStalled(pub, frames);
  const total = frames.reduce((n, f) => n + f.length, 0);
  assert.ok(unsent > total / 4, `the server went on reading: ${unsent} of ${total} bytes left unsent`);
  await until(() => got.length === COUNT, 30_000, 'every message');
  assert.deepEqual(got, Array.from({ length: COUNT }, (_, i) => i));
  pub.close();
  sub.close();
});

test('native over HTTP streaming: past 256 commands waiting, /emulation holds the next request unanswered until they drain; every command is handled, in order, once Redis answers', async () => {
  const sub = await RawClient.open(node.wsUrl);
  await sub.connect();
  assert.equal((await sub.call('subscribe', { channel: 'flood:e' })).error, undefined);
  const { first, reader } = await openHttpStream(node.url, JSON.stringify({ id: 1, connect: {} }));
  const { session, node: nodeId } = first.connect as { session: string; node: string };
  const statuses: number[] = [];
  const post = async (i: number) => {
    const data = JSON.stringify({ id: i + 2, publish: { channel: 'flood:e', data: { i } } });
    const res = await fetch(`${node.url}/emulation`, { method: 'POST', body: JSON.stringify({ session, node: nodeId, data }) });
    statuses.push(res.status);
  };
  let rest: Promise<void> | undefined;
  redis.pause();
  try {
    for (let i = 0; i < 256; i++) await post(i);
    assert.deepEqual(statuses, new Array(256).fill(204));
    // One after another, as a client that waits for each answer: the next is held, and those after it wait for it.
    rest = (async () => {
      for (let i = 256; i < 300; i++) await post(i);
    })();
    await sleep(500);
    assert.equal(statuses.length, 256, 'the request past the bound is held, not refused');
  } finally {
    redis.resume();
  }
  await rest;
  assert.deepEqual(statuses, new Array(300).fill(204));
  await until(() => sub.pushes('flood:e').length === 300, 30_000, 'every publication');
  assert.deepEqual(sub.pushes('flood:e').map((p) => p.data.i), Array.from({ length: 300 }, (_, i) => i));
  await reader.cancel();
  sub.close();
});
