// A third-party WebSocket client against Herald's Webdis dialect: Debian's python3-websocket
// (websocket-client) with redis-py, run by /usr/bin/python3, doing what Webdis users' scripts do —
// JSON and RESP commands, a hundred LPUSHes, and pub/sub across two channels in order.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { RedisProcess } from '../helpers/redis.js';
import { OPEN_LOCAL, startWebdis, type WebdisNode } from './helpers.js';

const SCRIPT = String.raw`
import json, sys, uuid
import redis
from websocket import create_connection

port, redis_port = int(sys.argv[1]), int(sys.argv[2])
connect = lambda fmt: create_connection('ws://127.0.0.1:%d/.%s' % (port, fmt), timeout=5)

def check(actual, expected, what):
    if actual != expected:
        raise SystemExit('%s: expected %r, got %r' % (what, expected, actual))

js = connect('json')
def call(*args):
    js.send(json.dumps(list(args)))
    return json.loads(js.recv())

check(call('PING'), {'PING': [True, 'PONG']}, 'PING')
key = str(uuid.uuid4())
call('DEL', key)
for i in range(100):
    check(call('LPUSH', key, 'value-%d' % i), {'LPUSH': i + 1}, 'LPUSH %d' % i)
check(call('LLEN', key), {'LLEN': 100}, 'LLEN')

raw = connect('raw')
def resp(*args):
    out = '*%d\r\n' % len(args)
    for a in args:
        out += '$%d\r\n%s\r\n' % (len(a.encode()), a)
    raw.send(out)
    return raw.recv()
check(resp('PING'), '+PONG\r\n', 'raw PING')
key = str(uuid.uuid4())
check(resp('GET', key), '$-1\r\n', 'raw GET missing')
check(resp('SET', key, 'v'), '+OK\r\n', 'raw SET')
check(resp('GET', key), '$1\r\nv\r\n', 'raw GET')

publisher, subscriber = connect('json'), connect('json')
channels = [str(uuid.uuid4()) for _ in range(2)]
for n, ch in enumerate(channels):
    subscriber.send(json.dumps(['SUBSCRIBE', ch]))
    check(json.loads(subscriber.recv()), {'SUBSCRIBE': ['subscribe', ch, n + 1]}, 'SUBSCRIBE')
for i in range(8):
    for ch in channels:
        publisher.send(json.dumps(['PUBLISH', ch, 'message-%d' % i]))
        check(json.loads(publisher.recv()), {'PUBLISH': 1}, 'PUBLISH')
# A Redis client publishes too: the ninth message of each channel.
r = redis.Redis(host='127.0.0.1', port=redis_port)
for ch in channels:
    r.publish(ch, 'message-8')
got = {ch: [] for ch in channels}
for _ in range(9 * len(channels)):
    m = json.loads(subscriber.recv())['SUBSCRIBE']
    check(m[0], 'message', 'push kind')
    got[m[1]].append(m[2])
for ch in channels:
    check(got[ch], ['message-%d' % i for i in range(9)], 'order on ' + ch)
for n, ch in enumerate(channels):
    subscriber.send(json.dumps(['UNSUBSCRIBE', ch]))
    check(json.loads(subscriber.recv()), {'UNSUBSCRIBE': ['unsubscribe', ch, len(channels) - n - 1]}, 'UNSUBSCRIBE')
print('ok')
`;

let redis: RedisProcess;
let node: WebdisNode;

before(async () => {
  redis = await RedisProcess.start();
  node = await startWebdis({ engine: { type: 'redis', redis: { url: redis.url } }, webdis: { acl: OPEN_LOCAL } });
});

after(async () => {
  await node?.close();
  await redis?.stop();
});

test('python3-websocket and redis-py: JSON, RESP, 100 LPUSHes, pub/sub on two channels in order', async () => {
  // Run asynchronously: the server under test lives in this process.
  const py = spawn('/usr/bin/python3', ['-c', SCRIPT, String(node.webdisPort), String(redis.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  py.stdout.on('data', (d: Buffer) => (out += d.toString()));
  py.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => py.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => py.once('exit', resolve));
  clearTimeout(timer);
  assert.equal(code, 0, out);
  assert.equal(out.trim(), 'ok');
});
