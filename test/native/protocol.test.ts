// The wire format: several commands in one frame handled in order, every id'd command answered,
// the reply shapes ({"id":N,"method":{...}}, result present when empty, errors without nulls),
// several replies joined by "\n" in one frame, unknown fields and key order ignored.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openNamespace, startNode, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, type Msg } from '../helpers/raw.js';

let node: TestNode;
before(async () => {
  node = await startNode({
    channel: {
      namespaces: [
        openNamespace('chat', { allow_publish_for_subscriber: true, allow_history_for_subscriber: true, history_size: 20, history_ttl: '60s' }),
        openNamespace('news'),
        { name: 'secret' },
      ],
    },
  });
});
after(() => node.close());

/** Every received line is valid JSON, no `"error":null`, no frame ends with a newline. */
function assertCleanFrames(r: RawClient): void {
  for (const frame of r.frames) {
    assert.equal(frame.endsWith('\n'), false, 'no trailing newline');
    assert.equal(frame.includes('"error":null'), false);
    for (const line of frame.split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
  }
}

test('connect and subscribe in one frame (SDK style, id last): the subscribe sees the finished connect', async () => {
  const r = await RawClient.open(node.wsUrl);
  const token = await userToken('alice');
  r.sendRaw(
    `{"connect":{"token":"${token}","name":"js"},"id":1}\n{"subscribe":{"channel":"chat:1","flag":1},"id":2}\n{"subscribe":{"channel":"news:1","flag":1},"id":3}`,
  );
  await r.reply(3);
  assert.deepEqual(r.messages.map((m) => m.id), [1, 2, 3]);
  assert.ok(r.messages[0]!.connect.client);
  assert.equal(r.messages[1]!.subscribe.recoverable ?? false, false);
  assert.equal(r.messages[1]!.subscribe.positioned ?? false, false);
  assert.deepEqual(r.messages[2]!.subscribe, {});
  await node.api.publish('news:1', 'after');
  await r.waitFor((m) => m.push?.channel === 'news:1');
  assertCleanFrames(r);
  r.close();
});

test('a frame of commands runs in order: subscribe, publish, history, unsubscribe see each other', async () => {
  const r = await RawClient.open(node.wsUrl);
  r.send(
    { id: 1, connect: { token: await userToken('alice') } },
    { id: 2, subscribe: { channel: 'chat:order' } },
    { id: 3, publish: { channel: 'chat:order', data: { n: 1 } } },
    { id: 4, history: { channel: 'chat:order', limit: 10 } },
    { id: 5, unsubscribe: { channel: 'chat:order' } },
    { id: 6, publish: { channel: 'chat:order', data: { n: 2 } } }, // no longer a subscriber: 103
    { id: 7, history: { channel: 'chat:order', limit: 10 } }, // 103 as well
  );
  await r.reply(7);
  const replies = r.messages.filter((m) => m.id !== undefined);
  assert.deepEqual(replies.map((m) => m.id), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(replies[2]!.publish, {});
  assert.deepEqual(replies[3]!.history.publications.map((p: Msg) => p.data), [{ n: 1 }]);
  assert.deepEqual(replies[4]!.unsubscribe, {});
  assert.equal(replies[5]!.error?.code, 103);
  assert.equal(replies[6]!.error?.code, 103);
  // The publication pushed to the publisher comes after its subscribe reply.
  const subIndex = r.messages.findIndex((m) => m.id === 2);
  const pushIndex = r.messages.findIndex((m) => m.push?.channel === 'chat:order');
  assert.ok(pushIndex > subIndex);
  assertCleanFrames(r);
  r.close();
});

test('every command with an id is answered, in order, within one or many frames', async () => {
  const r = await RawClient.open(node.wsUrl);
  await r.connect({ token: await userToken('alice') });
  const commands: Msg[] = [];
  const kinds = [
    (i: number) => ({ subscribe: { channel: `news:m${i}` } }),
    (i: number) => ({ subscribe: { channel: `secret:m${i}` } }), // 103
    (i: number) => ({ subscribe: { channel: `nope:m${i}` } }), // 102
    (i: number) => ({ publish: { channel: `news:m${i}`, data: i } }), // 103
    (i: number) => ({ history: { channel: `chat:m${i}` } }), // 103
    (i: number) => ({ presence: { channel: `news:m${i}` } }), // 108
    (i: number) => ({ presence_stats: { channel: `news:m${i}` } }), // 108
    () => ({ rpc: { method: 'x' } }), // 108
    (i: number) => ({ sub_refresh: { channel: `news:none${i}`, token: 'x' } }), // 103
    (i: number) => ({ unsubscribe: { channel: `news:m${i}` } }),
  ];
  for (let i = 0; i < 60; i++) commands.push({ id: 100 + i, ...kinds[i % kinds.length]!(i) });
  // 20 in one frame, then 40 in frames sent back to back without waiting.
  r.send(...commands.slice(0, 20));
  for (const cmd of commands.slice(20)) r.send(cmd);
  await r.reply(159, 5000);
  const replies = r.messages.filter((m) => typeof m.id === 'number' && m.id >= 100);
  assert.deepEqual(replies.map((m) => m.id), commands.map((c) => c.id));
  for (const reply of replies) {
    const keys = Object.keys(reply).filter((k) => k !== 'id');
    assert.equal(keys.length, 1, `one result or error field: ${JSON.stringify(reply)}`);
  }
  const codes = replies.slice(0, kinds.length).map((m) => m.error?.code ?? 'ok');
  assert.deepEqual(codes, ['ok', 103, 102, 103, 103, 108, 108, 108, 103, 'ok']);
  assert.equal(r.closeInfo, undefined);
  assertCleanFrames(r);
  r.close();
});

test('reply shapes: results always present, errors {code, message} only, temporary only when set', async () => {
  const r = await RawClient.open(node.wsUrl);
  r.sendRaw(`{"connect":{"token":"${await userToken('alice')}"},"id":1}`);
  await r.reply(1);
  assert.match(r.frames[0]!, /^\{"id":1,"connect":\{"client":"[0-9a-f-]{36}","version":"[^"]+"/);
  const frameOf = async (cmd: Msg) => {
    const id = r.id();
    r.send({ ...cmd, id });
    await r.reply(id);
    // The reply's line, as written (a push may share its frame).
    return r.frames.at(-1)!.split('\n').find((line) => line.startsWith(`{"id":${id},`))!;
  };
  r.id(); // 1 is taken by connect
  assert.equal(await frameOf({ subscribe: { channel: 'news:shape' } }), '{"id":2,"subscribe":{}}');
  assert.equal(await frameOf({ unsubscribe: { channel: 'news:shape' } }), '{"id":3,"unsubscribe":{}}');
  assert.equal(await frameOf({ subscribe: { channel: 'secret:shape' } }), '{"id":4,"error":{"code":103,"message":"permission denied"}}');
  assert.equal(await frameOf({ rpc: { method: 'm' } }), '{"id":5,"error":{"code":108,"message":"not available"}}');
  await frameOf({ subscribe: { channel: 'chat:shape' } });
  assert.equal(await frameOf({ publish: { channel: 'chat:shape', data: { a: 1 } } }), '{"id":7,"publish":{}}');
  const history = JSON.parse(await frameOf({ history: { channel: 'chat:shape', limit: 1 } }));
  assert.deepEqual(Object.keys(history.history).sort(), ['epoch', 'offset', 'publications']);
  assert.deepEqual(Object.keys(history.history.publications[0]).sort(), ['data', 'info', 'offset']);
  assert.deepEqual(Object.keys(history.history.publications[0].info).sort(), ['client', 'user']);
  assertCleanFrames(r);
  r.close();
});

test('unknown fields, trailing newline and uint32 ids are accepted', async () => {
  const r = await RawClient.open(node.wsUrl);
  r.sendRaw(`{"id":1,"connect":{"token":"${await userToken('alice')}","name":"js","version":"5.8.0","flag":3,"future":{"x":1}},"extra":true}\n`);
  assert.ok((await r.reply(1)).connect);
  r.sendRaw('{"subscribe":{"channel":"news:u","unknown_field":1,"delta":"fossil"},"id":4294967295}\n');
  const reply = await r.reply(4294967295);
  assert.ok(reply.subscribe, JSON.stringify(reply));
  assert.equal(reply.subscribe.delta ?? false, false, 'delta may be refused: then publications are plain');
  await node.api.publish('news:u', { plain: true });
  const push = await r.waitFor((m) => m.push?.channel === 'news:u');
  assert.deepEqual(push.push.pub.data, { plain: true });
  r.close();
});

test('several replies and pushes written together share one frame, joined by "\\n"', async () => {
  const r = await RawClient.open(node.wsUrl);
  await r.connect({ token: await userToken('alice') });
  await r.call('subscribe', { channel: 'news:batch' });
  const before = r.frames.length;
  await Promise.all(Array.from({ length: 20 }, (_, i) => node.herald.publish('news:batch', i)));
  await r.waitFor((m) => m.push?.pub?.data === 19);
  const frames = r.frames.slice(before);
  assert.ok(frames.length < 20, `20 pushes in ${frames.length} frames`);
  assert.ok(frames.some((f) => f.includes('\n')));
  assert.deepEqual(r.pushes('news:batch').map((p) => p.data), Array.from({ length: 20 }, (_, i) => i));
  assertCleanFrames(r);
  r.close();
});

test('zero fields are omitted: offset 0 of an empty stream, ping when pings are off', async () => {
  const quiet = await startNode({
    client: { ping_interval: 0 },
    channel: { namespaces: [openNamespace('rec', { history_size: 5, history_ttl: '60s', force_recovery: true })] },
  });
  try {
    const r = await RawClient.open(quiet.wsUrl);
    const connect = await r.connect({ token: await userToken('alice') });
    assert.equal('ping' in connect, false, JSON.stringify(connect));
    assert.equal('pong' in connect, false, 'no pings: nothing to answer');
    const sub = (await r.call('subscribe', { channel: 'rec:empty' })).subscribe;
    assert.deepEqual(Object.keys(sub).sort(), ['epoch', 'positioned', 'recoverable'], JSON.stringify(sub));
    const recovered = (await r.call('subscribe', { channel: 'rec:empty2', recover: true })).subscribe;
    assert.deepEqual(Object.keys(recovered).sort(), ['epoch', 'positioned', 'recoverable', 'recovered', 'was_recovering'], JSON.stringify(recovered));
    await quiet.api.subscribe('alice', 'rec:empty3');
    const push = await r.waitFor((m) => m.push?.subscribe !== undefined);
    assert.deepEqual(Object.keys(push.push.subscribe).sort(), ['epoch', 'positioned', 'recoverable'], JSON.stringify(push));
    r.close();
  } finally {
    await quiet.close();
  }
});
