// Persisted messages: stored with the expiry when a browser publishes, sent first to every socket that
// subscribes later (memory and Redis engines), and stored before a close that follows at once is
// answered, as ws4redis' own test (send, close, fetch_message) expects.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import { RedisProcess, useRedis } from '../helpers/redis.js';
import { RawSocket, sleep, startWs4Redis, W4RClient, waitSubscribed, wsUrl } from './helpers.js';

const PUBSUB = ['subscribe-broadcast', 'publish-broadcast'] as const;

let redis: RedisProcess;
let client: Redis;

useRedis((r, c) => {
  redis = r;
  client = c;
});

for (const engine of ['memory', 'redis'] as const) {
  test(`${engine} engine: the last message is sent first after a reconnect, then live ones`, async () => {
    const node = await startWs4Redis(
      { allowed_channels: [...PUBSUB] },
      engine === 'redis' ? { engine: { type: 'redis', redis: { url: redis.url } } } : {},
    );
    try {
      const a = await W4RClient.open(wsUrl(node, `state-${engine}`, 'subscribe-broadcast&publish-broadcast&echo'));
      if (engine === 'redis') await waitSubscribed(client, [`broadcast:state-${engine}`]);
      await a.send('{"count": 1}');
      await a.send('{"count": 2}');
      await a.waitCount(2);
      await a.close();

      const b = await W4RClient.open(wsUrl(node, `state-${engine}`, 'subscribe-broadcast&publish-broadcast'));
      await b.waitCount(1);
      assert.deepEqual(b.texts, ['{"count": 2}']);
      if (engine === 'redis') await waitSubscribed(client, [`broadcast:state-${engine}`]);
      const c = await W4RClient.open(wsUrl(node, `state-${engine}`, 'subscribe-broadcast&publish-broadcast'));
      await c.send('{"count": 3}');
      await b.waitCount(2);
      assert.deepEqual(b.texts, ['{"count": 2}', '{"count": 3}']);
      await Promise.all([b.close(), c.close()]);

      const d = await W4RClient.open(wsUrl(node, `state-${engine}`, 'subscribe-broadcast'));
      await d.waitCount(1);
      await sleep(100);
      assert.deepEqual(d.texts, ['{"count": 3}']);
      await d.close();
    } finally {
      await node.close();
    }
  });
}

test('memory engine: the expiry applies, and expire 0 stores nothing', async () => {
  const node = await startWs4Redis({ allowed_channels: [...PUBSUB], expire: '300ms' });
  const off = await startWs4Redis({ allowed_channels: [...PUBSUB], expire: 0 });
  try {
    const a = await W4RClient.open(wsUrl(node, 'short', 'publish-broadcast'));
    await a.send('soon gone');
    await sleep(50);
    const b = await W4RClient.open(wsUrl(node, 'short', 'subscribe-broadcast'));
    await b.waitCount(1);
    await sleep(400);
    const c = await W4RClient.open(wsUrl(node, 'short', 'subscribe-broadcast'));
    await sleep(150);
    assert.deepEqual(c.texts, []);

    const d = await W4RClient.open(wsUrl(off, 'none', 'publish-broadcast'));
    const e = await W4RClient.open(wsUrl(off, 'none', 'subscribe-broadcast'));
    await d.send('live only');
    await e.waitCount(1);
    const f = await W4RClient.open(wsUrl(off, 'none', 'subscribe-broadcast'));
    await sleep(150);
    assert.deepEqual(f.texts, []);
    await Promise.all([a, b, c, d, e, f].map((x) => x.close()));
  } finally {
    await Promise.all([node.close(), off.close()]);
  }
});

test('redis engine: a message and a close in one TCP write are published and stored before the close is answered', async () => {
  await client.flushall();
  const node = await startWs4Redis({ allowed_channels: [...PUBSUB], expire: 60 }, { engine: { type: 'redis', redis: { url: redis.url } } });
  try {
    const watcher = await W4RClient.open(wsUrl(node, 'fast', 'subscribe-broadcast'));
    await waitSubscribed(client, ['broadcast:fast']);
    for (let i = 0; i < 5; i++) {
      const raw = await RawSocket.open(node.port, '/ws/fast?publish-broadcast');
      raw.sendFrames([
        [0x1, Buffer.from(`last words ${i}`)],
        [0x8, RawSocket.closePayload(1000)],
      ]);
      const close = await raw.waitFrame(0x8);
      // Right after the close answer, Redis holds the message (no wait here).
      assert.equal(await client.get('broadcast:fast'), `last words ${i}`);
      assert.equal(close.payload.readUInt16BE(0), 1000);
      raw.destroy();
    }
    await watcher.waitCount(5);
    assert.deepEqual(watcher.texts, [0, 1, 2, 3, 4].map((i) => `last words ${i}`));
    const ttl = await client.ttl('broadcast:fast');
    assert.ok(ttl > 55 && ttl <= 60, `ttl ${ttl}`);
    await watcher.close();
  } finally {
    await node.close();
  }
});

// ws4redis' own test_publish_broadcast, with Debian's websocket-client and redis-py: send, close, and
// fetch_message at once.
const PY_SEND_CLOSE_FETCH = String.raw`
import sys, redis, websocket
port, redis_port = sys.argv[1], int(sys.argv[2])
r = redis.StrictRedis(host='127.0.0.1', port=redis_port)
for i in range(5):
    ws = websocket.create_connection('ws://127.0.0.1:%s/ws/pyfacility?publish-broadcast' % port, timeout=5)
    message = u'Hello from Python %d \u2713' % i
    ws.send(message)
    ws.close()
    assert r.get('broadcast:pyfacility') == message.encode('utf-8'), r.get('broadcast:pyfacility')
    assert 0 < r.ttl('broadcast:pyfacility') <= 3600
print('ok')
`;

test('websocket-client (Python): send, close, then GET finds the message at once', async () => {
  await client.flushall();
  const node = await startWs4Redis({ allowed_channels: [...PUBSUB] }, { engine: { type: 'redis', redis: { url: redis.url } } });
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const py = spawn('/usr/bin/python3', ['-c', PY_SEND_CLOSE_FETCH, String(node.port), String(redis.port)]);
      let text = '';
      const timer = setTimeout(() => {
        py.kill('SIGKILL');
        reject(new Error('python timed out'));
      }, 20_000);
      py.stdout.on('data', (d) => (text += d));
      py.stderr.on('data', (d) => (text += d));
      py.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(text);
        else reject(new Error(text));
      });
    });
    assert.equal(out.trim(), 'ok');
  } finally {
    await node.close();
  }
});

test('empty messages, as ws4redis drops them: a browser\'s is neither published nor stored, and an empty PUBLISH is not sent', async () => {
  const node = await startWs4Redis({ allowed_channels: [...PUBSUB] }, { engine: { type: 'redis', redis: { url: redis.url } } });
  const spy = client.duplicate();
  try {
    const heard: string[] = [];
    await spy.subscribe('broadcast:empty');
    spy.on('message', (_channel: string, message: string) => heard.push(message));
    const a = await W4RClient.open(wsUrl(node, 'empty', 'subscribe-broadcast&publish-broadcast'));
    const b = await W4RClient.open(wsUrl(node, 'empty', 'subscribe-broadcast'));
    await waitSubscribed(client, ['broadcast:empty']);
    await a.send('state');
    await b.waitCount(1);
    await a.send('');
    await a.send(Buffer.alloc(0), true);
    await client.publish('broadcast:empty', '');
    await client.publish('broadcast:empty', 'after');
    await b.waitCount(2);
    await sleep(100);
    assert.deepEqual(b.texts, ['state', 'after']);
    assert.deepEqual(heard, ['state', '', 'after'], 'only the test published an empty message');
    assert.equal(await client.get('broadcast:empty'), 'state', 'the stored state was kept');
    await Promise.all([a.close(), b.close()]);
  } finally {
    spy.disconnect();
    await node.close();
  }
});
