// Ws4RedisPublisher writes what ws4redis' RedisPublisher writes: the same commands (MONITOR) and the
// same Redis state (values and expiries) as the Python port run with redis-py, the same fetch_message
// answers, and its messages reach Herald's ws4redis sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { Ws4RedisPublisher, WS4REDIS_SELF, type Ws4RedisPublisherOptions } from '../../src/index.js';
import { RedisProcess, useRedis } from '../helpers/redis.js';
import { pythonPublisher, sleep, startWs4Redis, W4RClient, waitSubscribed, wsUrl, type PyOp } from './helpers.js';

let redis: RedisProcess;
let client: Redis;

useRedis((r, c) => {
  redis = r;
  client = c;
});

const BINARY = Buffer.from([0x00, 0xff, 0x10, 0x80, 0xfe]);

/** The same publications, for the Python port and for Ws4RedisPublisher. */
const SCENARIO: Array<{ py: PyOp; ts: Omit<Ws4RedisPublisherOptions, 'redis' | 'prefix' | 'expire'>; message: string | Buffer; expire?: number }> = [
  { py: { op: 'publish', facility: 'foo', broadcast: true, message: 'hello' }, ts: { facility: 'foo', broadcast: true }, message: 'hello' },
  {
    py: { op: 'publish', facility: 'foo', users: ['john', 'mary', 'john'], message: 'to users ✓', expire: 100 },
    ts: { facility: 'foo', users: ['john', 'mary', 'john'] },
    message: 'to users ✓',
    expire: 100,
  },
  {
    py: { op: 'publish', facility: 'bar', broadcast: true, groups: ['chatters'], sessions: ['sk1'], hex: BINARY.toString('hex') },
    ts: { facility: 'bar', broadcast: true, groups: ['chatters'], sessions: ['sk1'] },
    message: BINARY,
  },
  {
    py: {
      op: 'publish',
      facility: 'me',
      users: ['$SELF'],
      groups: ['$SELF', 'extra'],
      sessions: ['$SELF'],
      request: { user: 'john', groups: ['a', 'b'], session: 'sk-john' },
      message: 'to myself',
    },
    ts: {
      facility: 'me',
      users: [WS4REDIS_SELF],
      groups: [WS4REDIS_SELF, 'extra'],
      sessions: [WS4REDIS_SELF],
      identity: { user: 'john', groups: ['a', 'b'], session: 'sk-john' },
    },
    message: 'to myself',
  },
  { py: { op: 'publish', facility: 'gone', broadcast: true, message: 'not kept', expire: 0 }, ts: { facility: 'gone', broadcast: true }, message: 'not kept', expire: 0 },
];

interface Recorded {
  /** Commands per publication, in the order Redis ran them. */
  readonly commands: string[][][];
  /** key -> [hex value, ttl seconds] */
  readonly state: Map<string, [string, number]>;
}

/** Runs `publish` with MONITOR on, then reads back every key; an ECHO or GET before each publication marks where it starts. */
async function record(publish: () => Promise<void>): Promise<Recorded> {
  await client.flushall();
  const monitor = await client.monitor();
  const seen: string[][] = [];
  monitor.on('monitor', (_time: string, args: string[]) => seen.push(args.map(String)));
  await sleep(50);
  await publish();
  await sleep(100);
  monitor.disconnect();
  const commands: string[][][] = [];
  for (const args of seen) {
    const cmd = args[0]!.toLowerCase();
    if (cmd === 'echo' || cmd === 'get') commands.push([]);
    // Command names are case-insensitive (redis-py sends PUBLISH, ioredis publish).
    else if (cmd === 'publish' || cmd === 'setex') commands[commands.length - 1]?.push([cmd.toUpperCase(), ...args.slice(1)]);
  }
  const state = new Map<string, [string, number]>();
  for (const key of (await client.keys('*')).sort()) state.set(key, [(await client.getBuffer(key))!.toString('hex'), await client.ttl(key)]);
  return { commands, state };
}

/** Each PUBLISH is followed by the SETEX of its channel (when kept); channel order within a publication is a set's in ws4redis. */
function normalise(commands: string[][][]): string[][][] {
  return commands.map((list) => {
    const pairs: string[][][] = [];
    for (const args of list) {
      if (args[0] === 'PUBLISH') pairs.push([args]);
      else {
        const last = pairs[pairs.length - 1]!;
        assert.equal(last[0]![1], args[1], 'SETEX follows the PUBLISH of the same channel');
        last.push(args);
      }
    }
    return pairs.sort((a, b) => a[0]![1]!.localeCompare(b[0]![1]!)).flat();
  });
}

for (const prefix of ['', 'P']) {
  test(`the same commands and Redis state as ws4redis' RedisPublisher (prefix ${JSON.stringify(prefix)})`, async () => {
    const py = await record(async () => {
      // A fetch_message (one GET) before each publication marks where it starts.
      const ops: PyOp[] = SCENARIO.flatMap((s): PyOp[] => [{ op: 'fetch', facility: 'marker' }, s.py]);
      await pythonPublisher(redis.port, ops, { prefix });
    });
    const ts = await record(async () => {
      const conn = new Redis(redis.port, '127.0.0.1');
      try {
        for (const s of SCENARIO) {
          await conn.echo('marker');
          await new Ws4RedisPublisher({ redis: conn, prefix, ...s.ts }).publishMessage(s.message, s.expire);
        }
      } finally {
        conn.disconnect();
      }
    });
    assert.deepEqual(normalise(ts.commands), normalise(py.commands));
    assert.deepEqual([...ts.state.keys()], [...py.state.keys()]);
    for (const [key, [value, ttl]] of py.state) {
      const [tsValue, tsTtl] = ts.state.get(key)!;
      assert.equal(tsValue, value, key);
      assert.ok(Math.abs(tsTtl - ttl) <= 1, `${key}: ttl ${tsTtl} vs ${ttl}`);
    }
    const p = prefix ? `${prefix}:` : '';
    assert.deepEqual([...ts.state.keys()], [
      `${p}broadcast:bar`,
      `${p}broadcast:foo`,
      `${p}group:a:me`,
      `${p}group:b:me`,
      `${p}group:chatters:bar`,
      `${p}group:extra:me`,
      `${p}session:sk-john:me`,
      `${p}session:sk1:bar`,
      `${p}user:john:foo`,
      `${p}user:john:me`,
      `${p}user:mary:foo`,
    ]);
    assert.equal(ts.state.get(`${p}user:mary:foo`)![1], 100);
    assert.equal(ts.state.get(`${p}broadcast:foo`)![1], 3600);
  });
}

test('fetchMessage answers what fetch_message answers: session, then user, then groups, then broadcast', async () => {
  await client.flushall();
  const pub = (opts: Omit<Ws4RedisPublisherOptions, 'redis'>, message: string) => new Ws4RedisPublisher({ redis: client, ...opts }).publishMessage(message);
  await pub({ facility: 'f', broadcast: true }, 'B');
  await pub({ facility: 'f', groups: ['g2'] }, 'G2');
  await pub({ facility: 'f', users: ['john'] }, 'U');
  await pub({ facility: 'f', sessions: ['s1'] }, 'S');
  await pub({ facility: 'f', sessions: ['empty'] }, '');
  const requests = [
    { user: 'john', groups: ['g1', 'g2'], session: 's1' },
    { user: 'john', groups: ['g1', 'g2'], session: 'other' },
    { user: 'ann', groups: ['g1', 'g2'] },
    { groups: ['g2'], session: 'empty' },
    {},
  ];
  const audiences = ['any', 'session', 'user', 'group', 'broadcast'] as const;
  const ops: PyOp[] = [];
  for (const request of requests) for (const audience of audiences) ops.push({ op: 'fetch', facility: 'f', audience, request });
  const expected = await pythonPublisher(redis.port, ops);
  const publisher = new Ws4RedisPublisher({ redis: client });
  const got: unknown[] = [];
  for (const request of requests) for (const audience of audiences) got.push((await publisher.fetchMessage(request, 'f', audience))?.toString('hex') ?? null);
  assert.deepEqual(got, expected);
  assert.equal((await publisher.fetchMessage(requests[0]!, 'f'))!.toString(), 'S');
  assert.equal((await publisher.fetchMessage(null, 'f'))!.toString(), 'B');
});

test('checks: facility needed with an audience, whole-second expiries, the heartbeat cannot be published', async () => {
  assert.throws(() => new Ws4RedisPublisher({ redis: client, broadcast: true }), /facility is required/);
  assert.throws(() => new Ws4RedisPublisher({ redis: client, facility: 'f', expire: 1.5 }), /whole number of seconds/);
  const p = new Ws4RedisPublisher({ redis: client, facility: 'f', broadcast: true, heartbeat: '--hb--' });
  await assert.rejects(p.publishMessage('--hb--'), /heartbeat/);
  await assert.rejects(p.publishMessage('x', -1), /whole number of seconds/);
  assert.deepEqual(new Ws4RedisPublisher({ redis: client }).channels, []);
});

test('Ws4RedisPublisher reaches Herald ws4redis sockets through Redis; late sockets get the persisted message', async () => {
  await client.flushall();
  const node = await startWs4Redis({ prefix: 'app', allowed_channels: ['subscribe-broadcast', 'subscribe-user'] }, { engine: { type: 'redis', redis: { url: redis.url } } });
  try {
    const sub = await W4RClient.open(wsUrl(node, 'news', 'subscribe-broadcast'));
    await waitSubscribed(client, ['app:broadcast:news']);
    const publisher = new Ws4RedisPublisher({ redis: client, prefix: 'app', facility: 'news', broadcast: true });
    assert.equal(await publisher.publishMessage('first'), 1);
    await publisher.publishMessage(BINARY);
    await sub.waitCount(2);
    assert.deepEqual(sub.frames, [
      { data: Buffer.from('first'), binary: false },
      { data: BINARY, binary: true },
    ]);
    const late = await W4RClient.open(wsUrl(node, 'news', 'subscribe-broadcast'));
    await late.waitCount(1);
    assert.deepEqual(late.frames, [{ data: BINARY, binary: true }]);
    await Promise.all([sub.close(), late.close()]);
  } finally {
    await node.close();
  }
});
