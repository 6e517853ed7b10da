// Third-party clients against Herald's Webdis dialect, run by /usr/bin/python3: Debian's
// python3-websocket (websocket-client) with redis-py, doing what Webdis users' scripts do — JSON and
// RESP commands, a hundred LPUSHes, and pub/sub across two channels in order; and python3-msgpack
// reading `.msg` replies.
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

const MSGPACK_SCRIPT = String.raw`
import sys, uuid, socket, threading, time
import msgpack, redis
from urllib.request import urlopen

port, redis_port = int(sys.argv[1]), int(sys.argv[2])
def msg(path):
    with urlopen('http://127.0.0.1:%d/%s' % (port, path), timeout=5) as f:
        assert f.headers['Content-Type'] == 'application/x-msgpack', f.headers['Content-Type']
        return msgpack.unpackb(f.read(), raw=False)
def check(actual, expected, what):
    if actual != expected:
        raise SystemExit('%s: expected %r, got %r' % (what, expected, actual))

k = 'k' + uuid.uuid4().hex
check(msg('SET/%s/world.msg' % k), {'SET': [True, 'OK']}, 'SET')
check(msg('GET/%s.msg' % k), {'GET': 'world'}, 'GET')
check(msg('GET/missing-%s.msg' % k), {'GET': None}, 'GET nil')
n = 'n' + uuid.uuid4().hex
check(msg('INCR/%s.msg' % n), {'INCR': 1}, 'INCR')
for v in [127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 9223372036854775807, -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -9223372036854775808]:
    check(msg('SET/%s/%d.msg' % (n, v)), {'SET': [True, 'OK']}, 'SET int')
    check(msg('INCRBY/%s/0.msg' % n), {'INCRBY': v}, 'int %d' % v)
l = 'l' + uuid.uuid4().hex
msg('RPUSH/%s/abc.msg' % l); msg('RPUSH/%s/def.msg' % l)
check(msg('LRANGE/%s/0/-1.msg' % l), {'LRANGE': ['abc', 'def']}, 'LRANGE')
h = 'h' + uuid.uuid4().hex
msg('HSET/%s/a/1.msg' % h); msg('HSET/%s/b/2.msg' % h)
check(msg('HGETALL/%s.msg' % h), {'HGETALL': {'a': '1', 'b': '2'}}, 'HGETALL')
err = msg('UNKNOWNCMD/x.msg')
check(err['UNKNOWNCMD'][0], False, 'error flag')
check(isinstance(err['UNKNOWNCMD'][1], str), True, 'error text')
big = 'x' * 70000
r = redis.Redis(host='127.0.0.1', port=redis_port)
r.set(k, big)
check(msg('GET/%s.msg' % k), {'GET': big}, 'GET 70000 bytes')

# A comet stream: the confirmation, then each message, each one MessagePack value.
ch = 'c' + uuid.uuid4().hex
s = socket.create_connection(('127.0.0.1', port), timeout=5)
s.sendall(('GET /subscribe/%s.msg HTTP/1.1\r\nHost: x\r\n\r\n' % ch).encode())
unpacker = msgpack.Unpacker(raw=False)
head = b''
while b'\r\n\r\n' not in head:
    head += s.recv(1)
assert b'application/x-msgpack' in head, head
def chunks():
    buf = b''
    while True:
        while b'\r\n' not in buf:
            buf += s.recv(4096)
        size, buf = buf.split(b'\r\n', 1)
        size = int(size, 16)
        while len(buf) < size + 2:
            buf += s.recv(4096)
        yield buf[:size]
        buf = buf[size + 2:]
stream = chunks()
check(msgpack.unpackb(next(stream), raw=False), {'subscribe': ['subscribe', ch, 1]}, 'comet confirmation')
for i in range(3):
    r.publish(ch, 'm%d' % i)
    check(msgpack.unpackb(next(stream), raw=False), {'subscribe': ['message', ch, 'm%d' % i]}, 'comet message %d' % i)
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

/** Runs a Python script with Debian's python3 against the node and its Redis; resolves with its exit code and output. */
async function runPython(script: string): Promise<{ code: number | null; out: string }> {
  // Run asynchronously: the server under test lives in this process.
  const py = spawn('/usr/bin/python3', ['-c', script, String(node.webdisPort), String(redis.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  py.stdout.on('data', (d: Buffer) => (out += d.toString()));
  py.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => py.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => py.once('exit', resolve));
  clearTimeout(timer);
  return { code, out };
}

test('python3-websocket and redis-py: JSON, RESP, 100 LPUSHes, pub/sub on two channels in order', async () => {
  const { code, out } = await runPython(SCRIPT);
  assert.equal(code, 0, out);
  assert.equal(out.trim(), 'ok');
});

// Webdis's `.msg` replies read by a third-party MessagePack reader (Debian's python3-msgpack), as
// Webdis's own tests read them: a map of the verb to the reply, strings as strings, statuses and
// errors as [bool, text], integers of every size, HGETALL as a map; and a comet stream asked for as
// `.msg`, each message one MessagePack value.
test('python3-msgpack reads .msg replies and a .msg comet stream as Webdis writes them', async () => {
  const { code, out } = await runPython(MSGPACK_SCRIPT);
  assert.equal(code, 0, out);
  assert.equal(out.trim(), 'ok');
});
