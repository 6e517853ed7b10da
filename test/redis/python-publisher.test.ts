// A backend with only a Redis client (redis-py, from Debian) publishes into native channels: through
// the installed function (with history and offsets) and with a plain PUBLISH (no history).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { client, sign, startNode, until } from '../helpers/herald.js';
import { RedisProcess } from '../helpers/redis.js';

const SCRIPT = `
import json, sys, redis
r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]))
# With history: the function appends, numbers and publishes atomically.
ch = 'feed:py'
reply = r.execute_command('FCALL', 'herald_publish', 2, 'herald{%s}.h' % ch, 'herald{%s}.m' % ch,
                          'herald{%s}.p' % ch, json.dumps({'from': 'python', 'n': 1}), 100, 300000)
print(json.dumps([int(reply[0]), reply[1].decode()]))
# Without history: a plain PUBLISH of the JSON payload.
r.publish('herald{plain:py}.p', json.dumps({'plain': True}))
`;

test('redis-py publishes with FCALL herald_publish and with a plain PUBLISH', async () => {
  const redis = await RedisProcess.start();
  const node = await startNode({
    engine: { type: 'redis', redis: { url: redis.url } },
    channel: {
      namespaces: [
        { name: 'feed', allow_subscribe_for_client: true, history_size: 100, history_ttl: '5m', force_recovery: true },
        { name: 'plain', allow_subscribe_for_client: true },
      ],
    },
  });
  try {
    // Herald has installed its function library when it started.
    const c = client(node, { token: await sign({ sub: 'u' }) });
    const got: unknown[] = [];
    for (const ch of ['feed:py', 'plain:py']) {
      const sub = c.newSubscription(ch);
      sub.on('publication', (ctx) => got.push({ ch, data: ctx.data, offset: ctx.offset }));
      sub.subscribe();
    }
    c.connect();
    await until(() => Object.values(c.subscriptions()).every((s) => s.state === 'subscribed'), 5000, 'subscribed');
    const py = spawnSync('/usr/bin/python3', ['-c', SCRIPT, String(redis.port)], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(py.status, 0, py.stderr);
    const [offset, epoch] = JSON.parse(py.stdout.trim()) as [number, string];
    assert.equal(offset, 1);
    await until(() => got.length === 2, 5000, 'both publications');
    assert.deepEqual(got, [
      { ch: 'feed:py', data: { from: 'python', n: 1 }, offset: 1 },
      { ch: 'plain:py', data: { plain: true }, offset: undefined },
    ]);
    const h = await node.api.history('feed:py', { limit: -1 });
    assert.equal(h.epoch, epoch);
    assert.deepEqual(h.publications.map((p) => p.data), [{ from: 'python', n: 1 }]);
    c.disconnect();
  } finally {
    await node.close();
    await redis.stop();
  }
});
