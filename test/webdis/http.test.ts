// Webdis over HTTP with a real Redis: GET/POST/PUT, every extension, URL decoding, JSONP, ETag and
// 304, comet streams, 403/405/413, OPTIONS, the database prefix, and the main port's path prefix;
// with the memory engine, an HTTP PUBLISH reaching a WebSocket subscriber.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { CometStream } from '../../src/dialects/webdis/http.js';
import { rawChannel } from '../../src/engine/engine.js';
import { RedisProcess } from '../helpers/redis.js';
import { http, OPEN_LOCAL, sleep, startWebdis, TcpWs, WdClient, type WebdisNode } from './helpers.js';

let redis: RedisProcess;
let node: WebdisNode;
let memory: WebdisNode;
const clients: WdClient[] = [];

before(async () => {
  redis = await RedisProcess.start();
  node = await startWebdis({
    engine: { type: 'redis', redis: { url: redis.url } },
    webdis: { acl: OPEN_LOCAL, path_prefix: '/webdis', http_max_body_size: 512 * 1024 },
  });
  memory = await startWebdis({ webdis: { http_max_body_size: 1024 } });
});

after(async () => {
  for (const c of clients) c.close();
  await node?.close();
  await memory?.close();
  await redis?.stop();
});

const get = (path: string, headers: Record<string, string> = {}, n = node) => http(n.webdisPort, 'GET', path, { headers });
const md5 = (s: string | Buffer) => `"${createHash('md5').update(s).digest('hex')}"`;

test('GET: JSON replies with Content-Type, ETag (MD5 of the body) and CORS headers', async () => {
  await get('/DEL/hello');
  const set = await get('/SET/hello/world');
  assert.equal(set.status, 200);
  assert.equal(set.text, '{"SET":[true,"OK"]}');
  assert.equal(set.headers['content-type'], 'application/json');
  assert.equal(set.headers.etag, '"0db1124cf79ffeb80aff6d199d5822f8"');
  assert.equal(set.headers['access-control-allow-origin'], '*');
  assert.equal(set.headers['access-control-allow-methods'], 'GET,POST,PUT,OPTIONS');
  const g = await get('/GET/hello');
  assert.equal(g.text, '{"GET":"world"}');
  assert.equal(g.headers.etag, '"8cf38afc245b7a6a88696566483d1390"');
  await get('/DEL/counter');
  assert.equal((await get('/INCR/counter')).text, '{"INCR":1}');
  await get('/DEL/list');
  await get('/RPUSH/list/abc');
  await get('/RPUSH/list/def');
  assert.equal((await get('/LRANGE/list/0/-1')).text, '{"LRANGE":["abc","def"]}');
  assert.equal((await get('/GET/nothing-here')).text, '{"GET":null}');
  const unknown = await get('/UNKNOWN/COMMAND');
  assert.equal(unknown.status, 200, 'a Redis error is a 200');
  assert.deepEqual(Object.keys(JSON.parse(unknown.text)), ['UNKNOWN']);
  assert.equal(JSON.parse(unknown.text).UNKNOWN[0], false);
  assert.equal((await get('/PING')).text, '{"PING":[true,"PONG"]}');
  assert.equal((await get('/ping')).text, '{"ping":[true,"PONG"]}');
});

test('extensions: .json .js .raw .txt .html .xml .css .bin .png .jpg .jpeg, ?type=, ?sep=, unknown ones kept in the argument', async () => {
  await get('/SET/hello/world');
  const cases: Array<[string, string, string]> = [
    ['/GET/hello.json', 'application/json', '{"GET":"world"}'],
    ['/GET/hello.js', 'application/javascript', '{"GET":"world"}'],
    ['/GET/hello.raw', 'binary/octet-stream', '$5\r\nworld\r\n'],
    ['/SET/hello/world.raw', 'binary/octet-stream', '+OK\r\n'],
    ['/GET/hello.txt', 'text/plain', 'world'],
    ['/GET/hello.html', 'text/html', 'world'],
    ['/GET/hello.xml', 'text/xml', 'world'],
    ['/GET/hello.css', 'text/css', 'world'],
    ['/GET/hello.bin', 'binary/octet-stream', 'world'],
    ['/GET/hello.png', 'image/png', 'world'],
    ['/GET/hello.jpg', 'image/jpeg', 'world'],
    ['/GET/hello.jpeg', 'image/jpeg', 'world'],
    ['/SET/hello/world.txt', 'text/plain', '+OK'],
    ['/GET/hello?type=text/x-mine', 'text/x-mine', 'world'],
    ['/LRANGE/list/0/-1.raw', 'binary/octet-stream', '*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n'],
    ['/LRANGE/list/0/-1.txt', 'text/plain', 'abcdef'],
    ['/LRANGE/list/0/-1.txt?sep=--', 'text/plain', 'abc--def'],
    ['/INCR/counter.txt', 'text/plain', '2'],
    ['/INCR/counter.raw', 'binary/octet-stream', ':3\r\n'],
  ];
  await get('/DEL/list');
  await get('/RPUSH/list/abc/def');
  await get('/DEL/counter');
  await get('/INCR/counter');
  for (const [path, type, body] of cases) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers['content-type'], type, path);
    assert.equal(r.text, body, path);
  }
  assert.match((await get('/UNKNOWN/COMMAND.raw')).text, /^-ERR /);
  assert.match((await get('/UNKNOWN/COMMAND.txt')).text, /^-ERR /);
  // A nil value has no string to send: 404, as Webdis.
  assert.equal((await get('/GET/nothing-here.txt')).status, 404);
  // An unknown extension is part of the key.
  await get('/SET/file.name/dotted');
  assert.equal((await get('/GET/file.name')).text, '{"GET":"dotted"}');
  assert.equal((await get('/GET/file')).text, '{"GET":null}');
  assert.equal((await get('/GET/file.name.txt')).text, 'dotted');
  // ?filename= makes it a download.
  assert.equal((await get('/GET/hello.txt?filename=hello.txt')).headers['content-disposition'], 'attachment; filename="hello.txt"');
});

test('URL decoding: %2f is a / inside an argument, %2e a dot (not an extension), + a space', async () => {
  assert.equal((await get('/SET/a%2fb/x%2ey+z')).text, '{"SET":[true,"OK"]}');
  assert.equal((await get('/GET/a%2fb')).text, '{"GET":"x.y z"}');
  assert.equal((await get('/GET/a%2Fb.txt')).text, 'x.y z');
  await get('/SET/k%2ejson/dot');
  assert.equal((await get('/GET/k.json')).text, '{"GET":null}', '"k.json" is the key GET k with .json');
  assert.equal((await get('/GET/k%2ejson')).text, '{"GET":"dot"}');
  await get('/SET/pct/100%25+sure%zz');
  assert.equal((await get('/GET/pct.txt')).text, '100% sure%zz');
  await get('/SET/utf/%C3%A9t%C3%A9');
  assert.equal((await get('/GET/utf')).text, '{"GET":"été"}');
  // A trailing slash is an empty last argument.
  assert.equal((await get('/SET/empty/')).text, '{"SET":[true,"OK"]}');
  assert.equal((await get('/STRLEN/empty')).text, '{"STRLEN":0}');
});

test('POST / with the command as the body; PUT with the body as the last argument (256 KiB too)', async () => {
  const post = await http(node.webdisPort, 'POST', '/', { body: 'SET/posted/by%20post' });
  assert.equal(post.status, 200);
  assert.equal(post.text, '{"SET":[true,"OK"]}');
  assert.equal((await http(node.webdisPort, 'POST', '/', { body: 'GET/posted.txt' })).text, 'by post');
  const put = await http(node.webdisPort, 'PUT', '/SET/putkey', { body: 'raw / body + stays %2f as is' });
  assert.equal(put.text, '{"SET":[true,"OK"]}');
  assert.equal((await get('/GET/putkey.txt')).text, 'raw / body + stays %2f as is');
  const big = Buffer.alloc(256 * 1024, 'x');
  assert.equal((await http(node.webdisPort, 'PUT', '/SET/bigkey', { body: big })).text, '{"SET":[true,"OK"]}');
  assert.deepEqual((await get('/GET/bigkey.bin')).body, big);
  // An empty body adds no argument, as in Webdis: PING is PING, SET without a value an arity error.
  assert.equal((await http(node.webdisPort, 'PUT', '/PING', { body: '' })).text, '{"PING":[true,"PONG"]}');
  assert.match((await http(node.webdisPort, 'PUT', '/SET/emptykey', { body: '' })).text, /wrong number of arguments/);
  const oneK = 'y'.repeat(1024);
  await http(node.webdisPort, 'PUT', '/SET/kkey', { body: oneK });
  assert.equal((await get('/GET/kkey')).text, JSON.stringify({ GET: oneK }));
});

test('JSONP: ?jsonp= and ?callback= wrap the JSON; a callback that is not an identifier is refused', async () => {
  await get('/SET/hello/world');
  const a = await get('/GET/hello?jsonp=myFn');
  assert.equal(a.text, 'myFn({"GET":"world"});\n');
  assert.equal(a.headers.etag, md5('myFn({"GET":"world"});\n'));
  assert.equal((await get('/GET/hello.json?callback=jQuery123_456')).text, 'jQuery123_456({"GET":"world"});\n');
  assert.equal((await get('/GET/hello?callback=ns.handlers.fn')).text, 'ns.handlers.fn({"GET":"world"});\n');
  assert.equal((await get('/GET/hello?jsonp=alert(1)%3Bx')).status, 400);
  // JSONP applies to JSON only.
  assert.equal((await get('/GET/hello.txt?jsonp=cb')).text, 'world');
});

test('ETag and If-None-Match: a matching tag answers 304 without a body', async () => {
  await get('/SET/hello/world');
  const first = await get('/GET/hello.txt');
  assert.equal(first.headers.etag, md5('world'));
  const again = await get('/GET/hello.txt', { 'If-None-Match': md5('world') });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  const changed = await get('/GET/hello.txt', { 'If-None-Match': md5('nonsense') });
  assert.equal(changed.status, 200);
  assert.equal(changed.text, 'world');
  assert.equal((await get('/GET/hello', { 'If-None-Match': '"8cf38afc245b7a6a88696566483d1390"' })).status, 304);
});

/** Opens a comet stream and collects its chunks (each one reply). */
function comet(port: number, path: string): Promise<{ res: IncomingMessage; chunks: string[]; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      clearTimeout(timer);
      const chunks: string[] = [];
      res.on('data', (d: Buffer) => chunks.push(d.toString()));
      resolve({ res, chunks, close: () => req.destroy() });
    });
    const timer = setTimeout(() => reject(new Error('comet timed out')), 5000);
    req.on('error', () => undefined);
    req.end();
  });
}

async function until(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('comet: GET /SUBSCRIBE/chan streams the confirmation then each message, one chunk each, unbuffered by nginx', async () => {
  const c = await comet(node.webdisPort, '/SUBSCRIBE/cometchan');
  assert.equal(c.res.statusCode, 200);
  assert.equal(c.res.headers['transfer-encoding'], 'chunked');
  assert.equal(c.res.headers['content-type'], 'application/json');
  assert.equal(c.res.headers['x-accel-buffering'], 'no', 'a proxy in front (nginx) does not buffer the stream');
  await until(() => c.chunks.length === 1, 'the confirmation');
  assert.equal(c.chunks[0], '{"SUBSCRIBE":["subscribe","cometchan",1]}');
  assert.equal((await get('/PUBLISH/cometchan/first')).text, '{"PUBLISH":1}');
  await get('/PUBLISH/cometchan/second');
  await until(() => c.chunks.length === 3, 'two messages');
  assert.deepEqual(c.chunks.slice(1), ['{"SUBSCRIBE":["message","cometchan","first"]}', '{"SUBSCRIBE":["message","cometchan","second"]}']);
  c.close();
  await until(() => true, '');
  const deadline = Date.now() + 3000;
  while ((await get('/PUBLISH/cometchan/gone')).text !== '{"PUBLISH":0}') {
    assert.ok(Date.now() < deadline, 'the comet subscription outlived its client');
    await sleep(20);
  }
});

test('comet: a message larger than webdis.queue_max_size still goes to a reader with nothing else waiting', async () => {
  const n = await startWebdis({ webdis: { queue_max_size: 16 * 1024 } });
  try {
    const c = await comet(n.webdisPort, '/SUBSCRIBE/bigcomet');
    await until(() => c.chunks.length === 1, 'the confirmation');
    const big = 'b'.repeat(64 * 1024);
    assert.equal((await http(n.webdisPort, 'PUT', '/PUBLISH/bigcomet', { body: big })).text, '{"PUBLISH":1}');
    await until(() => c.chunks.join('').includes(`"${big}"`), 'the large message');
    c.close();
  } finally {
    await n.close();
  }
});

test('comet: a burst past webdis.queue_max_size that reaches the node at once goes whole to a reader that keeps reading; one that stops reading is cut off', async () => {
  const n = await startWebdis({ webdis: { queue_max_size: 256 * 1024 } });
  try {
    const reading = await comet(n.webdisPort, '/SUBSCRIBE/burstcomet');
    const stopped = await comet(n.webdisPort, '/SUBSCRIBE/burstcomet');
    await until(() => reading.chunks.length === 1 && stopped.chunks.length === 1, 'the confirmations');
    stopped.res.pause();
    (stopped.res.socket as import('node:net').Socket).pause();
    // 1,500 publications of 1 KB (6 times the limit, more than the kernel's socket buffers take) in
    // one turn, as a pipelined PUBLISH read from Redis at once, or an in-process publisher, makes them.
    const engine = (n.herald as unknown as { engine: { publish: (channel: string, req: { data: Buffer }) => Promise<unknown> } }).engine;
    await Promise.all(Array.from({ length: 1500 }, (_, i) => engine.publish(rawChannel('burstcomet'), { data: Buffer.from(`${String(i).padStart(4, '0')}${'x'.repeat(1000)}`) })));
    const got = () => [...reading.chunks.join('').matchAll(/"message","burstcomet","(\d{4})x/g)].map((m) => Number(m[1]));
    await until(() => got().length === 1500 || reading.res.destroyed || reading.res.complete, 'the whole burst', 10_000);
    assert.deepEqual(got(), Array.from({ length: 1500 }, (_, i) => i), 'every publication, once, in order');
    // The reader that stopped is cut off once what it has not taken passes the limit (past what the
    // kernel's buffers hold) and it takes nothing for a second: one receiver left.
    const deadline = Date.now() + 10_000;
    while ((await http(n.webdisPort, 'GET', '/PUBLISH/burstcomet/more')).text !== '{"PUBLISH":1}') {
      assert.ok(Date.now() < deadline, 'the reader that stopped was cut off');
      await engine.publish(rawChannel('burstcomet'), { data: Buffer.alloc(64 * 1024, 'm') });
      await sleep(50);
    }
    reading.close();
    stopped.close();
  } finally {
    await n.close();
  }
});

test('comet: PSUBSCRIBE, JSONP chunks, and .raw; chunk framing on the wire', async () => {
  const p = await comet(node.webdisPort, '/PSUBSCRIBE/pc*?jsonp=onMsg');
  await until(() => p.chunks.length === 1, 'the confirmation');
  assert.equal(p.chunks[0], 'onMsg({"PSUBSCRIBE":["psubscribe","pc*",1]});\n');
  await get('/PUBLISH/pcx/hi');
  await until(() => p.chunks.length === 2, 'the pmessage');
  assert.equal(p.chunks[1], 'onMsg({"PSUBSCRIBE":["pmessage","pc*","pcx","hi"]});\n');
  p.close();

  const r = await comet(node.webdisPort, '/SUBSCRIBE/rawcomet.raw');
  assert.equal(r.res.headers['content-type'], 'binary/octet-stream');
  await until(() => r.chunks.length === 1, 'the confirmation');
  assert.equal(r.chunks[0], '*3\r\n$9\r\nsubscribe\r\n$8\r\nrawcomet\r\n$1\r\n1\r\n');
  r.close();

  // On the wire: a chunked response whose chunks are whole replies.
  const tcp = await TcpWs.connect(node.webdisPort);
  try {
    const head = await tcp.handshake('GET /SUBSCRIBE/wirecomet HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.match(head, /transfer-encoding: chunked/i);
    await get('/PUBLISH/wirecomet/x');
    const first = '{"SUBSCRIBE":["subscribe","wirecomet",1]}';
    const second = '{"SUBSCRIBE":["message","wirecomet","x"]}';
    const expected = `${first.length.toString(16)}\r\n${first}\r\n${second.length.toString(16)}\r\n${second}\r\n`;
    const end = Date.now() + 3000;
    let got = '';
    while (got.length < expected.length && Date.now() < end) {
      await sleep(20);
      got = tcp.pending();
    }
    assert.equal(got, expected);
  } finally {
    tcp.destroy();
  }
});

test('statuses: 403 with an empty body, 405, OPTIONS, 413, no command, crossdomain.xml', async () => {
  const forbidden = await get('/GET/k', {}, memory);
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.body.length, 0);
  assert.equal(forbidden.headers['content-length'], '0');
  assert.equal((await get('/SUBSCRIBE', {}, memory)).text, '{"SUBSCRIBE":[false,"ERR wrong number of arguments for \'subscribe\' command"]}');
  for (const method of ['DELETE', 'PATCH', 'HEAD']) {
    const r = await http(memory.webdisPort, method, '/PING');
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.allow, 'GET,POST,PUT,OPTIONS');
  }
  const options = await http(memory.webdisPort, 'OPTIONS', '/');
  assert.equal(options.status, 200);
  assert.equal(options.headers['access-control-allow-origin'], '*');
  assert.equal(options.headers['access-control-allow-headers'], 'X-Requested-With, Content-Type, Authorization');
  assert.equal((await http(memory.webdisPort, 'POST', '/', { body: 'PUBLISH/c/' + 'x'.repeat(2048) })).status, 413);
  // Webdis's own wording, which its tests match: `413 Request Entity Too Large`, `Connection: Close`.
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect(memory.webdisPort, '127.0.0.1', () => socket.write('PUT /SET/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1073741824\r\n\r\n'));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    setTimeout(() => socket.destroy(), 3000);
  });
  assert.match(raw, /^HTTP\/1\.1 413 Request Entity Too Large\r\n/);
  assert.match(raw, /\r\nConnection: Close\r\n/);
  // `Expect: 100-continue` with a body too large: the 413 at once, no `100 Continue` (nothing uploaded);
  // with a body that fits: `100 Continue`, then the answer.
  const exchange = (length: number, body = '') =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(memory.webdisPort, '127.0.0.1', () =>
        socket.write(`PUT /PUBLISH/c HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`),
      );
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => {
        text += d;
        if (body && text.includes('100 Continue\r\n\r\n') && !text.includes('200')) socket.write(body);
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      setTimeout(() => socket.destroy(), 3000);
    });
  assert.match(await exchange(1 << 30), /^HTTP\/1\.1 413 Request Entity Too Large\r\n/);
  const fits = await exchange(5, 'hello');
  assert.match(fits, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  assert.match(fits, /\{"PUBLISH":0\}$/);
  assert.equal((await get('/', {}, memory)).status, 403);
  const xml = await get('/crossdomain.xml', {}, memory);
  assert.equal(xml.headers['content-type'], 'application/xml');
  assert.match(xml.text, /allow-access-from domain="\*"/);
});

test('memory engine: an HTTP PUBLISH reaches WebSocket subscribers; other commands are refused (403) by default', async () => {
  const s = await WdClient.open(memory.wsBase + '/.json');
  clients.push(s);
  await s.call('SUBSCRIBE', 'from-http');
  const r = await get('/PUBLISH/from-http/hello+world', {}, memory);
  assert.equal(r.text, '{"PUBLISH":1}');
  assert.deepEqual(await s.json(), { SUBSCRIBE: ['message', 'from-http', 'hello world'] });
  const post = await http(memory.webdisPort, 'POST', '/', { body: 'PUBLISH/from-http/posted' });
  assert.equal(post.text, '{"PUBLISH":1}');
  assert.deepEqual(await s.json(), { SUBSCRIBE: ['message', 'from-http', 'posted'] });
  assert.equal((await get('/UNSUBSCRIBE/from-http', {}, memory)).text, '{"UNSUBSCRIBE":["unsubscribe","from-http",0]}');
});

test('database prefix: /<n>/COMMAND runs on database n; a bad one never runs the command elsewhere', async () => {
  await get('/DEL/dbkey');
  assert.equal((await get('/3/SET/dbkey/three')).text, '{"SET":[true,"OK"]}');
  assert.equal((await get('/GET/dbkey')).text, '{"GET":null}');
  assert.equal((await get('/3/GET/dbkey')).text, '{"GET":"three"}');
  assert.equal((await get('/0/GET/dbkey')).text, '{"GET":null}');
  const bad = JSON.parse((await get('/99999/SET/dbkey/wrong')).text);
  assert.equal(bad.SET[0], false);
  assert.match(bad.SET[1], /DB index is out of range/);
  assert.equal((await get('/GET/dbkey')).text, '{"GET":null}');
  assert.equal((await get('/3/GET/dbkey')).text, '{"GET":"three"}');
});

test('webdis.path_prefix serves the same HTTP and WebSocket routes on the main port', async () => {
  const r = await http(node.port, 'GET', '/webdis/PING');
  assert.equal(r.text, '{"PING":[true,"PONG"]}');
  assert.equal((await http(node.port, 'GET', '/webdis/GET/hello.txt')).text, 'world');
  assert.equal((await http(node.port, 'GET', '/webdis')).status, 403);
  assert.equal((await http(node.port, 'GET', '/webdisx/PING')).status, 404);
  const c = await WdClient.open(`ws://127.0.0.1:${node.port}/webdis/.json`);
  clients.push(c);
  assert.deepEqual(await c.call('GET', 'hello'), { GET: 'world' });
  const raw = await WdClient.open(`ws://127.0.0.1:${node.port}/webdis/.raw`);
  clients.push(raw);
  raw.sendRaw('*1\r\n$4\r\nPING\r\n');
  assert.equal(await raw.next(), '+PONG\r\n');
});

test('webdis.listen false: no port of its own, served under the prefix only; webdis.websockets false: HTTP only', async () => {
  const n = await startWebdis({ webdis: { listen: false, path_prefix: '/wd', websockets: false } });
  try {
    assert.equal(n.herald.webdisPort, 0);
    assert.equal((await http(n.port, 'GET', '/wd/PING')).text, '{"PING":[true,"PONG"]}');
    await assert.rejects(WdClient.open(`ws://127.0.0.1:${n.port}/wd/.json`), /HTTP 404/);
  } finally {
    await n.close();
  }
});

test('comet: a reader left over the limit when the channel goes quiet is cut off after a second of taking nothing (a comet has no pings); one that takes it is not', async () => {
  const { createServer } = await import('node:http');
  const max = 64 * 1024;
  const streams: Array<{ res: import('node:http').ServerResponse; stream: CometStream }> = [];
  const server = createServer((req, res) => {
    res.writeHead(200);
    res.flushHeaders();
    streams.push({ res, stream: new CometStream(res, max) });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as import('node:net').AddressInfo).port;
  try {
    const open = () =>
      new Promise<IncomingMessage>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, resolve);
        req.on('error', () => undefined);
        req.end();
      });
    const stopped = await open();
    stopped.socket.pause();
    const reading = await open();
    let read = 0;
    reading.on('data', (d: Buffer) => (read += d.length));
    await until(() => streams.length === 2, 'both streams');
    // Messages until what the stopped reader has not taken passes the limit past the kernel's buffers.
    const message = Buffer.alloc(16 * 1024, 'q');
    for (let i = 0; i < 2000 && streams[0]!.res.writableLength <= max; i++) {
      for (const { stream } of streams) stream.writeMessages(message, [message, message], 3);
      await sleep(1);
    }
    assert.ok(streams[0]!.res.writableLength > max, 'the stopped reader is over the limit');
    // Then nothing more is written: the stopped one is cut off after STALL_MS, the reading one not.
    await until(() => streams[0]!.res.destroyed, 'the stopped reader cut off', 3000);
    await sleep(1200);
    assert.equal(streams[1]!.res.destroyed, false, 'the reader that took what it was given stays');
    assert.ok(read > 0);
    reading.destroy();
    stopped.destroy();
  } finally {
    for (const { res } of streams) res.destroy();
    server.close();
  }
});

test('comet: at shutdown, what the last turn queued goes out before the stream ends', async () => {
  const n = await startWebdis();
  let closed = false;
  try {
    const c = await comet(n.webdisPort, '/SUBSCRIBE/lastwords');
    await until(() => c.chunks.length === 1, 'the confirmation');
    const ended = new Promise<void>((r) => c.res.once('end', () => r()));
    const engine = (n.herald as unknown as { engine: { publish: (channel: string, req: { data: Buffer }) => Promise<unknown> } }).engine;
    for (let i = 0; i < 100; i++) void engine.publish(rawChannel('lastwords'), { data: Buffer.from(`w${i}`) });
    await n.close();
    closed = true;
    await ended;
    const got = [...c.chunks.join('').matchAll(/"message","lastwords","w(\d+)"/g)].map((m) => Number(m[1]));
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
  } finally {
    if (!closed) await n.close();
  }
});
