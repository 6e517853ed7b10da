// Webdis over WebSocket with the memory engine, `/.json`: every reply and pub/sub row of the compat
// document (docs: ../shared/compat/webdis.md), the seed's `["SUBSCRIBE", 666]`, labels, payload
// sizes and order, and malformed input that leaves the socket and its neighbours working.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { http, OPEN_LOCAL, startWebdis, WdClient, type WebdisNode } from './helpers.js';

let node: WebdisNode;
const clients: WdClient[] = [];

before(async () => {
  node = await startWebdis();
});

after(async () => {
  for (const c of clients) c.close();
  await node.close();
});

async function open(path = '/.json', n = node): Promise<WdClient> {
  const c = await WdClient.open(n.wsBase + path);
  clients.push(c);
  return c;
}

test('PING, PUBLISH with its receiver count; other commands refused by the default ACL', async () => {
  const c = await open();
  assert.deepEqual(await c.call('PING'), { PING: [true, 'PONG'] });
  assert.deepEqual(await c.call('PING', 'hello'), { PING: 'hello' });
  assert.deepEqual(await c.call('PUBLISH', 'nobody-listens', 'x'), { PUBLISH: 0 });
  assert.deepEqual(await c.call('PUBLISH', 'only-two-args'), { PUBLISH: [false, "ERR wrong number of arguments for 'publish' command"] });
  assert.deepEqual(await c.call('GET', 'k'), { error: true, message: 'Forbidden', http_status: 403 });
  assert.deepEqual(await c.call('SET', 'k', 'v'), { error: true, message: 'Forbidden', http_status: 403 });
  // The raw frame text is compact, keys in Webdis's order.
  c.send('PING');
  assert.equal(await c.next(), '{"PING":[true,"PONG"]}');
});

test('memory engine: commands the ACL opens answer a clear error; MULTI/EXEC/WATCH/DISCARD/SELECT stay refused', async () => {
  const open2 = await startWebdis({ webdis: { acl: OPEN_LOCAL } });
  try {
    const c = await WdClient.open(open2.wsBase + '/.json');
    clients.push(c);
    assert.deepEqual(await c.call('GET', 'k'), { GET: [false, 'ERR command not available: Herald runs the memory engine'] });
    assert.deepEqual(await c.call('lpush', 'l', 'a'), { lpush: [false, 'ERR command not available: Herald runs the memory engine'] });
    for (const verb of ['MULTI', 'EXEC', 'WATCH', 'DISCARD', 'SELECT', 'select']) {
      assert.deepEqual(await c.call(verb, '1'), { error: true, message: 'Forbidden', http_status: 403 }, verb);
    }
    assert.deepEqual(await c.call('PING'), { PING: [true, 'PONG'] });
  } finally {
    await open2.close();
  }
});

test('the seed: ["SUBSCRIBE", 666] subscribes to channel "666"; data.SUBSCRIBE[2] is 1, then each message', async () => {
  const page = await open();
  const publisher = await open();
  page.send('SUBSCRIBE', 666);
  const confirmation = await page.json();
  assert.deepEqual(confirmation, { SUBSCRIBE: ['subscribe', '666', 1] });
  assert.equal(confirmation.SUBSCRIBE[2], 1);
  assert.deepEqual(await publisher.call('PUBLISH', '666', 'You have started a server side function'), { PUBLISH: 1 });
  const msg = await page.json();
  assert.deepEqual(msg, { SUBSCRIBE: ['message', '666', 'You have started a server side function'] });
  assert.equal(msg.SUBSCRIBE[2], 'You have started a server side function');
});

test('"/" is JSON like "/.json"', async () => {
  const c = await open('/');
  assert.deepEqual(await c.call('PING'), { PING: [true, 'PONG'] });
  assert.deepEqual(await c.call('SUBSCRIBE', 'root-path'), { SUBSCRIBE: ['subscribe', 'root-path', 1] });
});

test('pub/sub rows: running counts, message, psubscribe/pmessage, unsubscribe counts, not allowed after subscribe', async () => {
  const s = await open();
  const p = await open();
  s.send('SUBSCRIBE', 'a', 'b');
  assert.deepEqual(await s.json(), { SUBSCRIBE: ['subscribe', 'a', 1] });
  assert.deepEqual(await s.json(), { SUBSCRIBE: ['subscribe', 'b', 2] });
  assert.deepEqual(await p.call('PUBLISH', 'a', 'to a'), { PUBLISH: 1 });
  assert.deepEqual(await s.json(), { SUBSCRIBE: ['message', 'a', 'to a'] });

  assert.deepEqual(await s.call('PSUBSCRIBE', 'c*'), { PSUBSCRIBE: ['psubscribe', 'c*', 3] });
  assert.deepEqual(await p.call('PUBLISH', 'cx', 'to cx'), { PUBLISH: 1 });
  assert.deepEqual(await s.json(), { PSUBSCRIBE: ['pmessage', 'c*', 'cx', 'to cx'] });

  for (const cmd of [['GET', 'k'], ['PING'], ['PUBLISH', 'a', 'x'], ['SUBSCRIBE'], ['UNSUBSCRIBE']]) {
    s.send(...cmd);
    assert.equal(await s.next(), 'Command not allowed after subscribe', cmd.join(' '));
  }

  assert.deepEqual(await s.call('UNSUBSCRIBE', 'a'), { UNSUBSCRIBE: ['unsubscribe', 'a', 2] });
  // Herald labels a message with the verb that created its subscription (Webdis would use the last verb).
  await p.call('PUBLISH', 'b', 'to b');
  assert.deepEqual(await s.json(), { SUBSCRIBE: ['message', 'b', 'to b'] });
  assert.deepEqual(await p.call('PUBLISH', 'a', 'gone'), { PUBLISH: 0 });

  assert.deepEqual(await s.call('PUNSUBSCRIBE', 'c*'), { PUNSUBSCRIBE: ['punsubscribe', 'c*', 1] });
  assert.deepEqual(await s.call('UNSUBSCRIBE', 'b'), { UNSUBSCRIBE: ['unsubscribe', 'b', 0] });
  // Out of subscribed mode: every command again.
  assert.deepEqual(await s.call('PING'), { PING: [true, 'PONG'] });
  await s.quiet(100);
});

test('a subscribed channel that also matches a pattern gets both pushes; PUBLISH counts both', async () => {
  const s = await open();
  const p = await open();
  await s.call('SUBSCRIBE', 'news');
  await s.call('PSUBSCRIBE', 'n*');
  assert.deepEqual(await p.call('PUBLISH', 'news', 'x'), { PUBLISH: 2 });
  const got = [await s.json(), await s.json()];
  assert.deepEqual(got, [{ SUBSCRIBE: ['message', 'news', 'x'] }, { PSUBSCRIBE: ['pmessage', 'n*', 'news', 'x'] }]);
});

test('subscribing twice to a channel answers again with the same count and delivers once', async () => {
  const s = await open();
  const p = await open();
  assert.deepEqual(await s.call('SUBSCRIBE', 'twice'), { SUBSCRIBE: ['subscribe', 'twice', 1] });
  assert.deepEqual(await s.call('SUBSCRIBE', 'twice'), { SUBSCRIBE: ['subscribe', 'twice', 1] });
  assert.deepEqual(await p.call('PUBLISH', 'twice', 'once'), { PUBLISH: 1 });
  assert.deepEqual(await s.json(), { SUBSCRIBE: ['message', 'twice', 'once'] });
  await s.quiet(100);
});

test('labels are the verb as the client spelled it, per subscription', async () => {
  const lower = await open();
  const upper = await open();
  const p = await open();
  assert.deepEqual(await lower.call('subscribe', 'spell'), { subscribe: ['subscribe', 'spell', 1] });
  assert.deepEqual(await upper.call('SUBSCRIBE', 'spell'), { SUBSCRIBE: ['subscribe', 'spell', 1] });
  assert.deepEqual(await lower.call('pSubscribe', 'sp*'), { pSubscribe: ['psubscribe', 'sp*', 2] });
  assert.deepEqual(await p.call('PUBLISH', 'spell', 'm'), { PUBLISH: 3 });
  assert.deepEqual(await upper.json(), { SUBSCRIBE: ['message', 'spell', 'm'] });
  assert.deepEqual([await lower.json(), await lower.json()], [{ subscribe: ['message', 'spell', 'm'] }, { pSubscribe: ['pmessage', 'sp*', 'spell', 'm'] }]);
});

test('UNSUBSCRIBE on a socket without subscriptions answers a count of 0', async () => {
  const c = await open();
  assert.deepEqual(await c.call('UNSUBSCRIBE', 'never'), { UNSUBSCRIBE: ['unsubscribe', 'never', 0] });
  assert.deepEqual(await c.call('UNSUBSCRIBE'), { UNSUBSCRIBE: ['unsubscribe', null, 0] });
  assert.deepEqual(await c.call('PUNSUBSCRIBE'), { PUNSUBSCRIBE: ['punsubscribe', null, 0] });
  assert.deepEqual(await c.call('SUBSCRIBE'), { SUBSCRIBE: [false, "ERR wrong number of arguments for 'subscribe' command"] });
});

test('1 KiB and 256 KiB payloads (UTF-8 included) arrive intact; 500 messages arrive in publish order', async () => {
  const s = await open();
  const p = await open();
  await s.call('SUBSCRIBE', 'big');
  for (const size of [1024, 256 * 1024]) {
    const payload = 'é€'.repeat(8) + 'x'.repeat(size - 40);
    assert.deepEqual(await p.call('PUBLISH', 'big', payload), { PUBLISH: 1 });
    const msg = await s.json(5000);
    assert.equal(msg.SUBSCRIBE[2], payload, `${size} bytes`);
  }
  for (let i = 0; i < 500; i++) p.send('PUBLISH', 'big', `m${i}`);
  const frames = await s.take(500, 10_000);
  assert.deepEqual(
    frames.map((f) => JSON.parse(f).SUBSCRIBE[2]),
    Array.from({ length: 500 }, (_, i) => `m${i}`),
  );
});

test('malformed input gets an error frame; the socket and its neighbours keep working', async () => {
  const bad = await open();
  const neighbour = await open();
  await neighbour.call('SUBSCRIBE', 'calm');
  const cases: Array<[string, RegExp]> = [
    ['not json', /not valid JSON/],
    ['{"SET":1}', /expected a JSON array/],
    ['"PING"', /expected a JSON array/],
    ['[]', /empty command/],
    ['[1,2]', /command name must be a non-empty string/],
    ['[""]', /command name must be a non-empty string/],
    ['["SET","k",{"a":1}]', /argument 2 must be a string or a number, got object/],
    ['["SET","k",null]', /argument 2 must be a string or a number, got null/],
    ['["SET","k",[1]]', /argument 2 must be a string or a number, got an array/],
    ['["SET","k",true]', /argument 2 must be a string or a number, got boolean/],
  ];
  for (const [frame, message] of cases) {
    bad.sendRaw(frame);
    const reply = await bad.json();
    assert.equal(reply.error, true, frame);
    assert.equal(reply.http_status, 400, frame);
    assert.match(reply.message, message, frame);
  }
  // A binary frame holding a JSON command is read like a text one.
  bad.sendRaw(Buffer.from('["PING"]'), true);
  assert.deepEqual(await bad.json(), { PING: [true, 'PONG'] });
  assert.deepEqual(await bad.call('PUBLISH', 'calm', 'still here'), { PUBLISH: 1 });
  assert.deepEqual(await neighbour.json(), { SUBSCRIBE: ['message', 'calm', 'still here'] });
  assert.equal(bad.binary.some(Boolean) || neighbour.binary.some(Boolean), false, 'every server frame is a text frame');
});

test('numbers are sent as their decimal text', async () => {
  const c = await open();
  const p = await open();
  assert.deepEqual(await c.call('SUBSCRIBE', 42, -7, 1.5), { SUBSCRIBE: ['subscribe', '42', 1] });
  assert.deepEqual(await c.json(), { SUBSCRIBE: ['subscribe', '-7', 2] });
  assert.deepEqual(await c.json(), { SUBSCRIBE: ['subscribe', '1.5', 3] });
  assert.deepEqual(await p.call('PUBLISH', 42, 12345), { PUBLISH: 1 });
  assert.deepEqual(await c.json(), { SUBSCRIBE: ['message', '42', '12345'] });
});

test('a client that closes leaves nothing subscribed behind', async () => {
  const s = await open();
  const p = await open();
  await s.call('SUBSCRIBE', 'leaving');
  await s.call('PSUBSCRIBE', 'leav*');
  s.ws.close();
  await s.waitClose();
  const deadline = Date.now() + 3000;
  for (;;) {
    const r = await p.call('PUBLISH', 'leaving', 'x');
    if (r.PUBLISH === 0) break;
    assert.ok(Date.now() < deadline, 'subscriptions still there after close');
    await new Promise((res) => setTimeout(res, 20));
  }
});

test('a subscriber that stops reading is cut off at webdis.queue_max_size; the publisher is unaffected', async () => {
  const small = await startWebdis({ webdis: { queue_max_size: 256 * 1024 } });
  try {
    const slow = await WdClient.open(small.wsBase + '/.json');
    const p = await WdClient.open(small.wsBase + '/.json');
    clients.push(slow, p);
    await slow.call('SUBSCRIBE', 'firehose');
    // The client reads nothing more from its TCP socket.
    (slow.ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
    const chunk = 'z'.repeat(64 * 1024);
    let receivers = 1;
    for (let round = 0; round < 20 && receivers > 0; round++) {
      for (let i = 0; i < 20; i++) p.send('PUBLISH', 'firehose', chunk);
      const replies = (await p.take(20, 10_000)).map((f) => JSON.parse(f).PUBLISH);
      receivers = replies[replies.length - 1];
    }
    assert.equal(receivers, 0, 'the slow subscriber was dropped');
    assert.deepEqual(await p.call('PING'), { PING: [true, 'PONG'] });
  } finally {
    await small.close();
  }
});

test('one socket holds at most 10,000 subscriptions; past that SUBSCRIBE answers an error', async () => {
  const c = await open();
  const names = Array.from({ length: 10_001 }, (_, i) => `many:${i}`);
  c.send('SUBSCRIBE', ...names);
  const frames = await c.take(10_001, 15_000);
  assert.deepEqual(JSON.parse(frames[9_999]!), { SUBSCRIBE: ['subscribe', 'many:9999', 10_000] });
  assert.deepEqual(JSON.parse(frames[10_000]!), { SUBSCRIBE: [false, 'ERR too many subscriptions on one connection (10000)'] });
  assert.deepEqual(await c.call('UNSUBSCRIBE', 'many:0'), { UNSUBSCRIBE: ['unsubscribe', 'many:0', 9_999] });
  c.close();
});

test('one socket holds at most 256 patterns; past that PSUBSCRIBE answers an error, and channels are still open', async () => {
  const c = await open();
  const patterns = Array.from({ length: 257 }, (_, i) => `p${i}:*`);
  c.send('PSUBSCRIBE', ...patterns);
  const frames = await c.take(257, 10_000);
  assert.deepEqual(JSON.parse(frames[255]!), { PSUBSCRIBE: ['psubscribe', 'p255:*', 256] });
  assert.deepEqual(JSON.parse(frames[256]!), { PSUBSCRIBE: [false, 'ERR too many patterns on one connection (256)'] });
  assert.deepEqual(await c.call('SUBSCRIBE', 'plain'), { SUBSCRIBE: ['subscribe', 'plain', 257] });
  assert.deepEqual(await c.call('PUNSUBSCRIBE', 'p0:*'), { PUNSUBSCRIBE: ['punsubscribe', 'p0:*', 256] });
  assert.deepEqual(await c.call('PSUBSCRIBE', 'again:*'), { PSUBSCRIBE: ['psubscribe', 'again:*', 257] });
  c.close();
});

test('webdis.max_node_patterns bounds the distinct patterns of the node: a shared one is free, one given back (PUNSUBSCRIBE, a socket gone) frees a place; comet streams share it', async () => {
  const small = await startWebdis({ webdis: { max_node_patterns: 2 } });
  const full = { PSUBSCRIBE: [false, 'ERR too many patterns on this node (webdis.max_node_patterns: 2)'] };
  try {
    const a = await open('/.json', small);
    const b = await open('/.json', small);
    a.send('PSUBSCRIBE', 'a*', 'b*');
    assert.deepEqual((await a.take(2)).map((f) => JSON.parse(f)), [{ PSUBSCRIBE: ['psubscribe', 'a*', 1] }, { PSUBSCRIBE: ['psubscribe', 'b*', 2] }]);
    assert.deepEqual(await b.call('PSUBSCRIBE', 'c*'), full);
    b.send('PSUBSCRIBE', 'x*', 'a*', 'y*');
    assert.deepEqual(
      (await b.take(3)).map((f) => JSON.parse(f)),
      [full, { PSUBSCRIBE: ['psubscribe', 'a*', 1] }, full],
      'one reply per name: a held pattern among refused ones is subscribed',
    );
    assert.deepEqual(await b.call('SUBSCRIBE', 'plain'), { SUBSCRIBE: ['subscribe', 'plain', 2] }, 'channels are not counted');
    const comet = await http(small.webdisPort, 'GET', '/PSUBSCRIBE/c*');
    assert.equal(comet.text, JSON.stringify(full), 'comet streams share the budget');
    assert.deepEqual(await a.call('PUNSUBSCRIBE', 'b*'), { PUNSUBSCRIBE: ['punsubscribe', 'b*', 1] });
    assert.deepEqual(await b.call('PSUBSCRIBE', 'c*'), { PSUBSCRIBE: ['psubscribe', 'c*', 3] });
    // Until the node has seen a socket's close, its patterns are held: wait for that (bounded).
    const connectionsAre = async (n: number) => {
      const count = async () => ((await small.herald.api('info')) as { nodes: Array<{ num_clients: number }> }).nodes[0]!.num_clients;
      for (let i = 0; i < 100 && (await count()) !== n; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await count(), n);
    };
    a.close();
    await connectionsAre(1);
    assert.deepEqual(await b.call('PSUBSCRIBE', 'd*'), full, 'a* is still held by b');
    assert.deepEqual(await b.call('PUNSUBSCRIBE', 'a*'), { PUNSUBSCRIBE: ['punsubscribe', 'a*', 2] });
    const c = await open('/.json', small);
    assert.deepEqual(await c.call('PSUBSCRIBE', 'd*'), { PSUBSCRIBE: ['psubscribe', 'd*', 1] });
    b.close();
    await connectionsAre(1);
    assert.deepEqual(await c.call('PSUBSCRIBE', 'e*'), { PSUBSCRIBE: ['psubscribe', 'e*', 2] }, 'c* given back with b');
    c.close();
  } finally {
    await small.close();
  }
});

test('webdis.max_node_patterns: a comet stream holds its pattern while open and gives it back when it ends', async () => {
  const small = await startWebdis({ webdis: { max_node_patterns: 1 } });
  try {
    const comet = await fetch(`${small.httpBase}/PSUBSCRIBE/z*`);
    const reader = comet.body!.getReader();
    await reader.read(); // the psubscribe confirmation
    const c = await open('/.json', small);
    assert.deepEqual(await c.call('PSUBSCRIBE', 'q*'), { PSUBSCRIBE: [false, 'ERR too many patterns on this node (webdis.max_node_patterns: 1)'] });
    await reader.cancel();
    let answer: unknown;
    for (let i = 0; i < 100; i++) {
      answer = await c.call('PSUBSCRIBE', 'q*');
      if ((answer as { PSUBSCRIBE: unknown[] }).PSUBSCRIBE[0] !== false) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(answer, { PSUBSCRIBE: ['psubscribe', 'q*', 1] });
    c.close();
  } finally {
    await small.close();
  }
});

test('channel names over 1,024 bytes and patterns over 128 are refused with an error; at the limit they work', async () => {
  const c = await open();
  const long = 'c'.repeat(1025);
  assert.deepEqual(await c.call('SUBSCRIBE', long), { SUBSCRIBE: [false, 'ERR channel name longer than 1024 bytes'] });
  assert.deepEqual(await c.call('PUBLISH', long, 'x'), { PUBLISH: [false, 'ERR channel name longer than 1024 bytes'] });
  assert.deepEqual(await c.call('PSUBSCRIBE', `*${'?'.repeat(128)}`), { PSUBSCRIBE: [false, 'ERR pattern longer than 128 bytes'] });
  assert.equal((await http(node.webdisPort, 'GET', `/PUBLISH/${long}/x`)).text, '{"PUBLISH":[false,"ERR channel name longer than 1024 bytes"]}');
  const pattern = `*${'?'.repeat(127)}`;
  assert.deepEqual(await c.call('PSUBSCRIBE', pattern), { PSUBSCRIBE: ['psubscribe', pattern, 1] });
  const p = await open();
  assert.deepEqual(await p.call('PUBLISH', 'c'.repeat(1024), 'at the limit'), { PUBLISH: 1 });
  assert.deepEqual(await c.json(), { PSUBSCRIBE: ['pmessage', pattern, 'c'.repeat(1024), 'at the limit'] });
  c.close();
  p.close();
});

test('/.raw with the memory engine: RESP requests, replies and pub/sub pushes in text frames', async () => {
  const s = await open('/.raw');
  const p = await open('/.raw');
  const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  s.sendRaw(resp('PING'));
  assert.equal(await s.next(), '+PONG\r\n');
  s.sendRaw(resp('PING', 'echo'));
  assert.equal(await s.next(), '$4\r\necho\r\n');
  s.sendRaw(resp('GET', 'k'));
  assert.equal(await s.next(), '-ERR Forbidden\r\n');
  s.sendRaw(resp('SUBSCRIBE', 'rc'));
  assert.equal(await s.next(), '*3\r\n$9\r\nsubscribe\r\n$2\r\nrc\r\n$1\r\n1\r\n');
  p.sendRaw(resp('PUBLISH', 'rc', 'hi there'));
  assert.equal(await p.next(), ':1\r\n');
  assert.equal(await s.next(), '*3\r\n$7\r\nmessage\r\n$2\r\nrc\r\n$8\r\nhi there\r\n');
  s.sendRaw(resp('PSUBSCRIBE', 'r?'));
  assert.equal(await s.next(), '*3\r\n$10\r\npsubscribe\r\n$2\r\nr?\r\n$1\r\n2\r\n');
  p.sendRaw(resp('PUBLISH', 'rc', 'both'));
  assert.equal(await p.next(), ':2\r\n');
  assert.deepEqual(await s.take(2), ['*3\r\n$7\r\nmessage\r\n$2\r\nrc\r\n$4\r\nboth\r\n', '*4\r\n$8\r\npmessage\r\n$2\r\nr?\r\n$2\r\nrc\r\n$4\r\nboth\r\n']);
  s.sendRaw(resp('PING'));
  assert.equal(await s.next(), 'Command not allowed after subscribe');
  s.sendRaw(resp('UNSUBSCRIBE', 'rc'));
  assert.equal(await s.next(), '*3\r\n$11\r\nunsubscribe\r\n$2\r\nrc\r\n$1\r\n1\r\n');
  assert.equal([...s.binary, ...p.binary].some(Boolean), false, 'text frames only');
});
