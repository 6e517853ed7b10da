// Webdis with the Redis engine and a real redis-server: every reply type of the compat table (JSON
// and `/.raw` as Redis sends it), pub/sub rows in both formats, a redis-py PUBLISH reaching a
// WebSocket subscriber, two Herald nodes on one Redis, the shared connection pool, blocking commands,
// always-refused commands, and Redis going away and coming back.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { RedisProcess } from '../helpers/redis.js';
import { http, OPEN_LOCAL, sleep, startWebdis, WdClient, type WebdisNode } from './helpers.js';

let redis: RedisProcess;
let node: WebdisNode;
const clients: WdClient[] = [];

before(async () => {
  redis = await RedisProcess.start();
  node = await startWebdis({ engine: { type: 'redis', redis: { url: redis.url } }, webdis: { acl: [...OPEN_LOCAL, { disabled: ['DEBUG'] }] } });
});

after(async () => {
  for (const c of clients) c.close();
  await node?.close();
  await redis?.stop();
});

async function open(path = '/.json', n: WebdisNode = node): Promise<WdClient> {
  const c = await WdClient.open(n.wsBase + path);
  clients.push(c);
  return c;
}

/** A RESP command as a `/.raw` client writes it. */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

test('JSON replies: status, error, bulk string, integer, nil, array (nil elements null), and the object forms', async () => {
  const c = await open();
  assert.deepEqual(await c.call('SET', 'hello', 'world'), { SET: [true, 'OK'] });
  assert.deepEqual(await c.call('GET', 'hello'), { GET: 'world' });
  assert.deepEqual(await c.call('GET'), { GET: [false, "ERR wrong number of arguments for 'get' command"] });
  assert.deepEqual(await c.call('GET', 'missing'), { GET: null });
  await c.call('DEL', 'list');
  assert.deepEqual(await c.call('LPUSH', 'list', 'c', 'b', 'a'), { LPUSH: 3 });
  assert.deepEqual(await c.call('LRANGE', 'list', 0, -1), { LRANGE: ['a', 'b', 'c'] });
  assert.deepEqual(await c.call('MGET', 'hello', 'missing'), { MGET: ['world', null] });
  await c.call('DEL', 'h');
  await c.call('HSET', 'h', 'f1', 'v1', 'f2', 'v2');
  assert.deepEqual(await c.call('HGETALL', 'h'), { HGETALL: { f1: 'v1', f2: 'v2' } });
  const unknown = await c.call('NOSUCHCOMMAND', 'x');
  assert.equal(unknown.NOSUCHCOMMAND[0], false);
  assert.match(unknown.NOSUCHCOMMAND[1], /^ERR unknown command/);
  const info = await c.call('INFO', 'server');
  assert.match(info.INFO.redis_version, /^\d+\.\d+/);
  // Keys are the verb as spelled; the frame is compact.
  c.send('get', 'hello');
  assert.equal(await c.next(), '{"get":"world"}');
  // 64-bit integers keep every digit.
  await c.call('SET', 'n', '9007199254740993');
  c.send('INCR', 'n');
  assert.equal(await c.next(), '{"INCR":9007199254740994}');
  // Stream entries read as objects.
  await c.call('DEL', 's');
  const id = (await c.call('XADD', 's', '*', 'k', 'v')).XADD;
  assert.deepEqual(await c.call('XRANGE', 's', '-', '+'), { XRANGE: [{ id, msg: { k: 'v' } }] });
});

test('/.raw: replies are RESP exactly as Redis sends them, each in one text frame', async () => {
  const c = await open('/.raw');
  const cases: Array<[string[], string]> = [
    [['DEL', 'rk'], ':0\r\n'],
    [['GET', 'rk'], '$-1\r\n'],
    [['SET', 'rk', 'world'], '+OK\r\n'],
    [['GET', 'rk'], '$5\r\nworld\r\n'],
    [['DEL', 'rl'], ':0\r\n'],
    [['RPUSH', 'rl', 'abc', 'def'], ':2\r\n'],
    [['LRANGE', 'rl', '0', '-1'], '*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n'],
    [['PING'], '+PONG\r\n'],
    [['DEBUG', 'SLEEP', '0'], '-ERR Forbidden\r\n'],
    [['MULTI'], '-ERR Forbidden\r\n'],
  ];
  for (const [args, expected] of cases) {
    c.sendRaw(resp(...args));
    assert.equal(await c.next(), expected, args.join(' '));
  }
  c.sendRaw(resp('GET'));
  assert.match(await c.next(), /^-ERR wrong number of arguments/);
  // Several commands in one frame: one reply frame each, in order.
  c.sendRaw(resp('SET', 'rk', 'a') + resp('APPEND', 'rk', 'b') + resp('GET', 'rk'));
  assert.deepEqual(await c.take(3), ['+OK\r\n', ':2\r\n', '$2\r\nab\r\n']);
  // Malformed RESP: an error reply, the socket stays usable.
  c.sendRaw('PING\r\n');
  assert.match(await c.next(), /^-ERR bad request: /);
  c.sendRaw('*2\r\n$3\r\nGET\r\n');
  assert.match(await c.next(), /^-ERR bad request: incomplete RESP command/);
  c.sendRaw(resp('PING'));
  assert.equal(await c.next(), '+PONG\r\n');
  assert.equal(c.binary.some(Boolean), false, 'text frames only');
});

test('/.raw pub/sub: confirmations and messages as RESP arrays of bulk strings, counts included', async () => {
  const s = await open('/.raw');
  const p = await open('/.raw');
  s.sendRaw(resp('SUBSCRIBE', 'rc'));
  assert.equal(await s.next(), '*3\r\n$9\r\nsubscribe\r\n$2\r\nrc\r\n$1\r\n1\r\n');
  p.sendRaw(resp('PUBLISH', 'rc', 'hi there'));
  assert.equal(await p.next(), ':1\r\n');
  assert.equal(await s.next(), '*3\r\n$7\r\nmessage\r\n$2\r\nrc\r\n$8\r\nhi there\r\n');
  s.sendRaw(resp('PSUBSCRIBE', 'r*'));
  assert.equal(await s.next(), '*3\r\n$10\r\npsubscribe\r\n$2\r\nr*\r\n$1\r\n2\r\n');
  p.sendRaw(resp('PUBLISH', 'rx', 'p'));
  await p.next();
  assert.equal(await s.next(), '*4\r\n$8\r\npmessage\r\n$2\r\nr*\r\n$2\r\nrx\r\n$1\r\np\r\n');
  s.sendRaw(resp('GET', 'x'));
  assert.equal(await s.next(), 'Command not allowed after subscribe');
  s.sendRaw(resp('UNSUBSCRIBE', 'rc'));
  assert.equal(await s.next(), '*3\r\n$11\r\nunsubscribe\r\n$2\r\nrc\r\n$1\r\n1\r\n');
  s.sendRaw(resp('PUNSUBSCRIBE', 'r*'));
  assert.equal(await s.next(), '*3\r\n$12\r\npunsubscribe\r\n$2\r\nr*\r\n$1\r\n0\r\n');
});

test('JSON pub/sub rows through Redis, and a redis-py PUBLISH reaching the seed-style subscriber', async () => {
  const s = await open();
  const p = await open();
  s.send('SUBSCRIBE', 'a', 'b');
  assert.deepEqual([await s.json(), await s.json()], [{ SUBSCRIBE: ['subscribe', 'a', 1] }, { SUBSCRIBE: ['subscribe', 'b', 2] }]);
  assert.deepEqual(await s.call('PSUBSCRIBE', 'c*'), { PSUBSCRIBE: ['psubscribe', 'c*', 3] });
  assert.deepEqual(await p.call('PUBLISH', 'a', 'one'), { PUBLISH: 1 });
  assert.deepEqual(await s.json(), { SUBSCRIBE: ['message', 'a', 'one'] });
  await p.call('PUBLISH', 'cx', 'two');
  assert.deepEqual(await s.json(), { PSUBSCRIBE: ['pmessage', 'c*', 'cx', 'two'] });
  s.send('SET', 'k', 'v');
  assert.equal(await s.next(), 'Command not allowed after subscribe');
  assert.deepEqual(await s.call('UNSUBSCRIBE', 'a'), { UNSUBSCRIBE: ['unsubscribe', 'a', 2] });

  const seed = await open();
  assert.deepEqual(await seed.call('SUBSCRIBE', 666), { SUBSCRIBE: ['subscribe', '666', 1] });
  const py = spawnSync(
    '/usr/bin/python3',
    ['-c', "import sys, redis\nr = redis.client.StrictRedis(host='127.0.0.1', port=int(sys.argv[1]), db=0, password=None)\nprint(r.publish(666, 'from redis-py'))", String(redis.port)],
    { encoding: 'utf8', timeout: 20_000 },
  );
  assert.equal(py.status, 0, py.stderr);
  assert.equal(py.stdout.trim(), '1', 'one Redis subscriber: this node');
  assert.deepEqual(await seed.json(), { SUBSCRIBE: ['message', '666', 'from redis-py'] });
});

test('SUBSCRIBE and UNSUBSCRIBE of 2,000 channels in one command: running counts, one engine round trip each way', async () => {
  const c = await open();
  const names = Array.from({ length: 2000 }, (_, i) => `bulk:${i}`);
  const started = Date.now();
  c.send('SUBSCRIBE', ...names);
  const confirmations = (await c.take(2000, 10_000)).map((f) => JSON.parse(f).SUBSCRIBE);
  assert.deepEqual(confirmations[1999], ['subscribe', 'bulk:1999', 2000]);
  assert.ok(confirmations.every((r, i) => r[1] === `bulk:${i}` && r[2] === i + 1));
  const p = await open();
  assert.deepEqual(await p.call('PUBLISH', 'bulk:1234', 'x'), { PUBLISH: 1 });
  assert.deepEqual(await c.json(), { SUBSCRIBE: ['message', 'bulk:1234', 'x'] });
  c.send('UNSUBSCRIBE', ...names);
  const left = (await c.take(2000, 10_000)).map((f) => JSON.parse(f).UNSUBSCRIBE);
  assert.deepEqual(left[1999], ['unsubscribe', 'bulk:1999', 0]);
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  assert.deepEqual(await p.call('PUBLISH', 'bulk:1234', 'x'), { PUBLISH: 0 });
});

test('two Herald nodes on one Redis: a Webdis client on one reaches subscribers on the other', async () => {
  const other = await startWebdis({ engine: { type: 'redis', redis: { url: redis.url } } });
  try {
    const sub = await WdClient.open(other.wsBase + '/.json');
    const psub = await WdClient.open(other.wsBase + '/.raw');
    clients.push(sub, psub);
    await sub.call('SUBSCRIBE', 'xnode');
    psub.sendRaw(resp('PSUBSCRIBE', 'xno*'));
    await psub.next();
    const pub = await open();
    // Redis counts per connection and subscription: the other node's channel and its pattern.
    assert.deepEqual(await pub.call('PUBLISH', 'xnode', 'over redis'), { PUBLISH: 2 });
    assert.deepEqual(await sub.json(), { SUBSCRIBE: ['message', 'xnode', 'over redis'] });
    assert.equal(await psub.next(), '*4\r\n$8\r\npmessage\r\n$4\r\nxno*\r\n$5\r\nxnode\r\n$10\r\nover redis\r\n');
    // And over HTTP.
    const res = await http(node.webdisPort, 'GET', '/PUBLISH/xnode/by%20http');
    assert.equal(res.text, '{"PUBLISH":2}');
    assert.deepEqual(await sub.json(), { SUBSCRIBE: ['message', 'xnode', 'by http'] });
  } finally {
    await other.close();
  }
});

test('commands share a fixed pool of Redis connections, not one per client', async () => {
  const count = () => {
    const out = spawnSync('redis-cli', ['-p', String(redis.port), 'CLIENT', 'LIST'], { encoding: 'utf8', timeout: 5000 }).stdout;
    return out.trim().split('\n').length;
  };
  const before = count();
  const many = await Promise.all(Array.from({ length: 30 }, () => open()));
  await Promise.all(many.map((c, i) => c.call('SET', `pool:${i}`, String(i))));
  await Promise.all(many.map((c, i) => c.call('GET', `pool:${i}`).then((r) => assert.deepEqual(r, { GET: String(i) }))));
  const afterOpen = count();
  assert.ok(afterOpen - before <= 4, `30 clients added ${afterOpen - before} Redis connections (pool size 4)`);
  for (const c of many) c.close();
});

test('pipelined commands from one client are answered in order; 1 KiB and 256 KiB values round-trip', async () => {
  const c = await open();
  for (let i = 0; i < 50; i++) c.send('RPUSH', 'order', String(i));
  c.send('DEL', 'order');
  const replies = (await c.take(51)).map((f) => JSON.parse(f));
  assert.deepEqual(replies.slice(0, 50).map((r) => r.RPUSH), Array.from({ length: 50 }, (_, i) => i + 1));
  for (const size of [1024, 256 * 1024]) {
    const value = 'ü'.repeat(size / 2);
    assert.deepEqual(await c.call('SET', 'big', value), { SET: [true, 'OK'] });
    assert.equal((await c.call('GET', 'big')).GET, value);
  }
});

test('refused whatever the ACL says: MULTI/EXEC/WATCH/DISCARD/SELECT (403) and commands that would change a shared connection', async () => {
  const c = await open();
  for (const verb of ['MULTI', 'EXEC', 'WATCH', 'DISCARD', 'SELECT']) assert.deepEqual(await c.call(verb, '1'), { error: true, message: 'Forbidden', http_status: 403 });
  for (const args of [['MONITOR'], ['HELLO', '3'], ['AUTH', 'x'], ['CLIENT', 'REPLY', 'OFF'], ['QUIT']]) {
    const r = await c.call(...args);
    const v = r[args[0]!];
    assert.equal(v[0], false, args.join(' '));
    assert.match(v[1], /not available through Herald/);
  }
  assert.deepEqual(await c.call('PING'), { PING: [true, 'PONG'] });
});

test('a blocking command waits on a connection of its own; the pool keeps serving meanwhile', async () => {
  const waiter = await open();
  const other = await open();
  await other.call('DEL', 'queue');
  waiter.send('BLPOP', 'queue', 5);
  await sleep(50);
  for (let i = 0; i < 10; i++) assert.deepEqual(await other.call('PING'), { PING: [true, 'PONG'] });
  assert.deepEqual(await other.call('GET', 'missing'), { GET: null });
  assert.deepEqual(await other.call('LPUSH', 'queue', 'job'), { LPUSH: 1 });
  assert.deepEqual(await waiter.json(), { BLPOP: ['queue', 'job'] });
});

test('Redis down: "Service Unavailable" frames and 503; when it is back, commands and subscriptions work again', async () => {
  const own = await RedisProcess.start();
  const n = await startWebdis({ engine: { type: 'redis', redis: { url: own.url, command_timeout: '1s' } }, webdis: { acl: OPEN_LOCAL } });
  try {
    const sub = await WdClient.open(n.wsBase + '/.json');
    const c = await WdClient.open(n.wsBase + '/.json');
    clients.push(sub, c);
    assert.deepEqual(await sub.call('SUBSCRIBE', 'survivor'), { SUBSCRIBE: ['subscribe', 'survivor', 1] });
    assert.deepEqual(await c.call('SET', 'k', 'v'), { SET: [true, 'OK'] });
    await own.kill();
    c.send('GET', 'k');
    assert.equal(await c.next(5000), 'Service Unavailable');
    c.send('PUBLISH', 'survivor', 'lost');
    assert.equal(await c.next(5000), 'Service Unavailable');
    const late = await WdClient.open(n.wsBase + '/.json');
    clients.push(late);
    late.send('SUBSCRIBE', 'late');
    assert.equal(await late.next(8000), 'Service Unavailable');
    assert.equal((await http(n.webdisPort, 'GET', '/GET/k')).status, 503);
    assert.equal((await http(n.webdisPort, 'GET', '/PUBLISH/survivor/x')).status, 503);
    // PING goes to Redis, as in Webdis: a health check sees Redis away.
    c.send('PING');
    assert.equal(await c.next(5000), 'Service Unavailable');
    assert.equal((await http(n.webdisPort, 'GET', '/PING')).status, 503);

    await own.spawn();
    // Publish until the subscriber, subscribed again by Herald, gets one; what was published before
    // it was back is lost (plain Redis pub/sub keeps nothing).
    const deadline = Date.now() + 15_000;
    for (let i = 0; sub.frames.length === 1; i++) {
      assert.ok(Date.now() < deadline, 'the subscription did not come back');
      c.send('PUBLISH', 'survivor', `back-${i}`);
      await c.next(5000);
      await sleep(100);
    }
    assert.match((await sub.json()).SUBSCRIBE[2], /^back-\d+$/);
    assert.deepEqual(await c.call('PUBLISH', 'survivor', 'final'), { PUBLISH: 1 });
    for (;;) {
      const m = await sub.json();
      if (m.SUBSCRIBE[2] === 'final') break;
      assert.match(m.SUBSCRIBE[2], /^back-\d+$/);
    }
    assert.deepEqual(await c.call('SET', 'k', 'again'), { SET: [true, 'OK'] });
    assert.deepEqual(await c.call('GET', 'k'), { GET: 'again' });
  } finally {
    await n.close();
    await own.stop();
  }
});
