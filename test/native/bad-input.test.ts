// Bad input over raw WebSocket: undecodable, empty and oversized frames, commands out of place,
// unknown methods, protobuf requests, stale connections and non-JSON payloads. Each case ends that
// connection only: a well-behaved centrifuge-js client on the same node keeps receiving.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { client, collect, openNamespace, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

let node: TestNode;
let bystander: Centrifuge;
let received: unknown[];
let seq = 0;

before(async () => {
  node = await startNode({
    client: { allow_anonymous_connect_without_token: true },
    channel: {
      namespaces: [
        openNamespace('news', { allow_publish_for_client: true, allow_history_for_client: true, history_size: 10, history_ttl: '60s' }),
        openNamespace('rec', { history_size: 10, history_ttl: '60s', force_recovery: true }),
      ],
    },
  });
  bystander = client(node, { token: await userToken('watcher') });
  const sub = bystander.newSubscription('news:by');
  received = collect(sub);
  sub.subscribe();
  bystander.connect();
  await sub.ready(3000);
});
after(() => node.close());

/** Publishes to the bystander's channel and checks it arrives. */
async function bystanderStillReceives(): Promise<void> {
  const n = ++seq;
  await node.api.publish('news:by', { n });
  await until(() => received.some((d) => (d as { n: number }).n === n), 3000, `bystander publication ${n}`);
  assert.equal(bystander.state, 'connected');
}

beforeEach(async () => {
  await bystanderStillReceives();
});

/** Opens a raw client, connects it unless `connect` is false, runs `act`, expects a close with `code`. */
async function expectClose(code: number, act: (r: RawClient) => void | Promise<void>, connect = true): Promise<RawClient> {
  const r = await RawClient.open(node.wsUrl);
  if (connect) await r.connect({ token: await userToken('alice') });
  await act(r);
  const closed = await r.waitClose();
  assert.equal(closed.code, code, `close code (reason "${closed.reason}")`);
  await bystanderStillReceives();
  return r;
}

test('undecodable JSON: 3501, before and after connect', async () => {
  for (const connect of [false, true]) {
    await expectClose(3501, (r) => r.sendRaw('{"id":1,"connect":'), connect);
    await expectClose(3501, (r) => r.sendRaw('not json at all'), connect);
    await expectClose(3501, (r) => r.sendRaw('{"id":5,"subscribe":{"channel":"news:1"}}\n{oops'), connect);
  }
});

test('empty frames: 3501', async () => {
  for (const frame of ['', '\n', ' ']) {
    await expectClose(3501, (r) => r.sendRaw(frame), false);
    await expectClose(3501, (r) => r.sendRaw(frame));
  }
});

test('a message that is not a JSON object, or has a bad id: 3501', async () => {
  for (const frame of ['[1,2]', '"connect"', 'null', '42', '{"id":"1","connect":{}}', '{"id":-1,"connect":{}}', '{"id":1.5,"connect":{}}']) {
    await expectClose(3501, (r) => r.sendRaw(frame), false);
  }
});

test('a frame over the 64 KiB limit: close 1009; just under it is fine', async () => {
  const r = await RawClient.open(node.wsUrl);
  await r.connect({ token: await userToken('alice') });
  const fits = JSON.stringify({ id: 2, publish: { channel: 'news:big', data: 'x'.repeat(65_000) } });
  assert.ok(Buffer.byteLength(fits) <= 65536);
  r.sendRaw(fits);
  assert.ok((await r.reply(2)).publish);
  r.sendRaw(JSON.stringify({ id: 3, publish: { channel: 'news:big', data: 'x'.repeat(70_000) } }));
  assert.equal((await r.waitClose()).code, 1009);
  await bystanderStillReceives();

  await expectClose(1009, (c) => c.sendRaw('x'.repeat(65537)), false);
});

test('centrifuge-js sending a frame over the limit ends disconnected with code 3 (message size limit)', async () => {
  const c = client(node, { token: await userToken('alice') });
  c.connect();
  await c.ready(2000);
  const disconnected = new Promise<{ code: number }>((resolve) => c.once('disconnected', resolve));
  c.publish('news:big', 'y'.repeat(70_000)).catch(() => undefined);
  assert.equal((await disconnected).code, 3);
  await sleep(300);
  assert.equal(c.state, 'disconnected');
  await bystanderStillReceives();
});

test('any command before connect: 3501 (the connection gets no reply)', async () => {
  for (const cmd of [
    { id: 1, subscribe: { channel: 'news:1' } },
    { id: 1, publish: { channel: 'news:1', data: 1 } },
    { id: 1, history: { channel: 'news:1' } },
    { id: 1, refresh: { token: 'x' } },
    {}, // a pong before connect
    { send: { data: 1 } },
  ]) {
    const r = await expectClose(3501, (c) => c.send(cmd), false);
    assert.equal(r.messages.length, 0, JSON.stringify(cmd));
  }
});

test('a second connect: 3501', async () => {
  await expectClose(3501, (r) => r.send({ id: r.id(), connect: {} }));
  await expectClose(3501, (r) => r.send({ id: r.id(), connect: { token: 'whatever' } }));
});

test('an id with an unknown method or no method: 3501; the ping method: 3501', async () => {
  await expectClose(3501, (r) => r.send({ id: r.id(), frobnicate: { channel: 'news:1' } }));
  await expectClose(3501, (r) => r.send({ id: r.id() }));
  await expectClose(3501, (r) => r.send({ id: r.id(), ping: {} }));
  await expectClose(3501, (r) => r.send({ id: 1, frobnicate: {} }), false);
});

test('a pong with no ping outstanding: 3501', async () => {
  await expectClose(3501, (r) => r.send({}));
});

test('a pong in a frame right behind a connect still in flight waits its turn: the connect reply, then 3501', async () => {
  const r = await RawClient.open(node.wsUrl);
  // The connect checks its token asynchronously; the pong, a frame of its own, comes in meanwhile.
  r.send({ id: 1, connect: { token: await userToken('alice') } });
  r.sendRaw('{}');
  assert.equal((await r.waitClose()).code, 3501, 'no ping was outstanding');
  assert.equal(r.messages.length, 1);
  assert.ok(r.messages[0]!.connect, 'the connect was answered before the pong was');
  await bystanderStillReceives();
});

test('after a failed connect (expired token: 109), any later frame closes with 3501', async () => {
  const r = await RawClient.open(node.wsUrl);
  r.send({ id: 1, connect: { token: await userToken('alice', {}, -10) } }, { id: 2, subscribe: { channel: 'news:1' } });
  assert.equal((await r.reply(1)).error?.code, 109);
  r.send({});
  assert.equal((await r.waitClose()).code, 3501);
  assert.equal(r.messages.length, 1, 'only the connect error was answered');
  await bystanderStillReceives();
});

test('protobuf is refused: no centrifuge-protobuf subprotocol, cf_protocol=protobuf closes with 3506', async () => {
  await assert.rejects(RawClient.open(node.wsUrl, { protocols: ['centrifuge-protobuf'] }));
  const both = await RawClient.open(node.wsUrl, { protocols: ['centrifuge-protobuf', 'centrifuge-json'] });
  assert.equal(both.ws.protocol, 'centrifuge-json');
  await both.connect({ token: await userToken('alice') });
  both.close();
  const none = await RawClient.open(node.wsUrl);
  assert.equal(none.ws.protocol, '');
  none.close();
  for (const query of ['cf_protocol=protobuf', 'format=protobuf']) {
    const pb = await RawClient.open(`${node.wsUrl}?${query}`);
    assert.equal((await pb.waitClose()).code, 3506);
  }
  await bystanderStillReceives();
});

test('no (successful) connect within the stale delay: 3502', async () => {
  const stale = await startNode({ client: { stale_close_delay: '300ms' } });
  try {
    const r = await RawClient.open(stale.wsUrl);
    const started = Date.now();
    assert.equal((await r.waitClose(2000)).code, 3502);
    assert.ok(Date.now() - started >= 250);
    // A connection left unusable by a failed connect is not kept open either.
    const failed = await RawClient.open(stale.wsUrl);
    failed.send({ id: 1, connect: { token: await userToken('alice', {}, -10) } });
    assert.equal((await failed.reply(1)).error?.code, 109);
    assert.equal((await failed.waitClose(2000)).code, 3502);
    const ok = await RawClient.open(stale.wsUrl);
    await ok.connect({ token: await userToken('alice') });
    await sleep(500);
    assert.equal(ok.closeInfo, undefined, 'a connected client is not stale');
    ok.close();
  } finally {
    await stale.close();
  }
});

test('a non-JSON payload (API b64data) closes JSON clients of the channel with 3506, never sends broken JSON', async () => {
  const notJson = Buffer.from('not json {').toString('base64');
  const r = await RawClient.open(node.wsUrl);
  await r.connect({ token: await userToken('alice') });
  await r.call('subscribe', { channel: 'news:binary' });
  await node.api.call('publish', { channel: 'news:binary', b64data: notJson });
  assert.equal((await r.waitClose()).code, 3506);
  const allLinesParse = (c: RawClient) => {
    for (const frame of c.frames) for (const line of frame.split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
  };
  allLinesParse(r);

  // Reading that history, or recovering it, is refused the same way.
  const h = await RawClient.open(node.wsUrl);
  await h.connect({ token: await userToken('alice') });
  h.send({ id: h.id(), history: { channel: 'news:binary', limit: 10 } });
  assert.equal((await h.waitClose()).code, 3506);
  allLinesParse(h);

  await node.api.publish('rec:binary', { fine: 1 });
  await node.api.call('publish', { channel: 'rec:binary', b64data: notJson });
  const top = await node.api.history('rec:binary', { limit: 0 });
  const rec = await RawClient.open(node.wsUrl);
  await rec.connect({ token: await userToken('alice') });
  rec.send({ id: rec.id(), subscribe: { channel: 'rec:binary', recover: true, offset: 0, epoch: top.epoch } });
  assert.equal((await rec.waitClose()).code, 3506);
  allLinesParse(rec);

  // JSON given as b64data is fine, and raw newlines in it (whitespace) never split the line.
  const ok = await RawClient.open(node.wsUrl);
  await ok.connect({ token: await userToken('alice') });
  await ok.call('subscribe', { channel: 'news:b64json' });
  await node.api.call('publish', { channel: 'news:b64json', b64data: Buffer.from('{\n  "a": [1,\n 2]\n}\n').toString('base64') });
  const push = await ok.waitFor((m) => m.push?.channel === 'news:b64json');
  assert.deepEqual(push.push.pub.data, { a: [1, 2] });
  allLinesParse(ok);
  ok.close();
  await bystanderStillReceives();
});
