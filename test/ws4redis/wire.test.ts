// Wire behaviour: payloads as published (UTF-8 as text, the rest binary), echo on and off, heartbeats,
// subprotocols, plain HTTP on a WebSocket path, origins, sizes, and every close code from 1000 to 1015
// (even the reserved ones ws refuses) handled as a normal close.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import type { TestNode } from '../helpers/herald.js';
import { rawHttp, RawSocket, sleep, startWs4Redis, W4RClient, WAIT, wsUrl } from './helpers.js';

const HEARTBEAT = '--heartbeat--';
let node: TestNode;
const opened: W4RClient[] = [];

before(async () => {
  node = await startWs4Redis({
    allowed_channels: ['subscribe-broadcast', 'publish-broadcast'],
    heartbeat: HEARTBEAT,
    queue_max_size: 65536,
  });
});

after(async () => {
  for (const c of opened) c.ws.terminate();
  await node.close();
});

async function open(facility: string, query: string, opts: Parameters<typeof W4RClient.open>[1] = {}): Promise<W4RClient> {
  const c = await W4RClient.open(wsUrl(node, facility, query), opts);
  opened.push(c);
  return c;
}

test('echo: off by default (a socket does not get its own last message back), on with `echo`', async () => {
  const a = await open('echo', 'subscribe-broadcast&publish-broadcast');
  const b = await open('echo', 'subscribe-broadcast&publish-broadcast&echo');
  const c = await open('echo', 'subscribe-broadcast&publish-broadcast');
  await a.send('x');
  await c.waitCount(1);
  await b.send('y');
  await c.waitCount(2);
  // Someone else publishing what `a` published last: equal to a's own message, so not sent to a.
  await c.send('x');
  await b.waitCount(3);
  await c.send('z');
  await b.waitCount(4);
  await a.waitCount(2);
  await sleep(100);
  assert.deepEqual(a.texts, ['y', 'z']);
  assert.deepEqual(b.texts, ['x', 'y', 'x', 'z']);
  assert.deepEqual(c.texts, ['x', 'y']);
});

test("echo suppression follows ws4redis's last received message: a heartbeat or an empty message ends it; a socket that may not publish compares too", async () => {
  const a = await open('echo2', 'subscribe-broadcast&publish-broadcast');
  const b = await open('echo2', 'subscribe-broadcast&publish-broadcast');
  const s = await open('echo2', 'subscribe-broadcast'); // may not publish
  await a.send('A');
  await b.waitCount(1);
  await s.waitCount(1);
  await a.send(HEARTBEAT); // answered, and a's last message is now the heartbeat: nothing to suppress
  await a.waitCount(1);
  await b.send('A');
  await a.waitCount(2);
  await s.waitCount(2);
  await a.send('C');
  await b.waitCount(2);
  await a.send(''); // not published; ends the suppression as the heartbeat did
  await b.send('C');
  await a.waitCount(3);
  await s.waitCount(4);
  await s.send('D'); // not published (no publish flag), but its last message
  await b.send('D');
  await a.waitCount(4);
  await b.send('E');
  await a.waitCount(5);
  await s.waitCount(5);
  await sleep(100);
  assert.deepEqual(a.texts, [HEARTBEAT, 'A', 'C', 'D', 'E']);
  assert.deepEqual(b.texts, ['A', 'C']);
  assert.deepEqual(s.texts, ['A', 'A', 'C', 'C', 'E']);
});

test('payloads as published: UTF-8 as text frames, anything else as binary frames, no wrapping', async () => {
  const pub = await open('bytes', 'publish-broadcast');
  const sub = await open('bytes', 'subscribe-broadcast');
  const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41]);
  const big = Buffer.alloc(60_000, 0xc3);
  await pub.send(binary);
  await pub.send(Buffer.from('sent binary, valid UTF-8 ✓'), true);
  await pub.send('{"json": "as is"}');
  await pub.send('');
  await pub.send(big);
  const frames = await sub.waitCount(4);
  assert.deepEqual(frames[0], { data: binary, binary: true });
  assert.deepEqual(frames[1], { data: Buffer.from('sent binary, valid UTF-8 ✓'), binary: false });
  assert.deepEqual(frames[2], { data: Buffer.from('{"json": "as is"}'), binary: false });
  // The empty message was dropped, as ws4redis drops it.
  assert.equal(frames[3]!.binary, true);
  assert.ok(frames[3]!.data.equals(big));
  // The persisted binary message keeps its bytes and frame type too.
  await pub.send(binary);
  const late = await open('bytes', 'subscribe-broadcast');
  await late.waitCount(1);
  assert.deepEqual(late.frames[0], { data: binary, binary: true });
});

test('heartbeats are answered with the heartbeat string and never published or stored', async () => {
  const a = await open('hb', 'subscribe-broadcast&publish-broadcast');
  const b = await open('hb', 'subscribe-broadcast');
  await a.send(HEARTBEAT);
  await a.send(Buffer.from(HEARTBEAT), true);
  await a.waitCount(2);
  assert.deepEqual(a.frames, [
    { data: Buffer.from(HEARTBEAT), binary: false },
    { data: Buffer.from(HEARTBEAT), binary: false },
  ]);
  await a.send('real');
  await b.waitCount(1);
  await sleep(100);
  assert.deepEqual(b.texts, ['real']);
  // A subscribe-only socket gets its heartbeat answered as well.
  await b.send(HEARTBEAT);
  await b.waitCount(2);
  const c = await open('hb', 'subscribe-broadcast');
  await c.waitCount(1);
  assert.deepEqual(c.texts, ['real']);
});

test('an offered subprotocol is echoed (the first one); none is sent when none is offered', async () => {
  const headers = (protocols: string[]) =>
    new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
      const ws = new WebSocket(wsUrl(node, 'proto', 'subscribe-broadcast'), protocols);
      ws.once('upgrade', (res) => resolve(res.headers));
      ws.once('error', reject);
      ws.once('open', () => ws.terminate());
    });
  assert.equal((await headers(['chat']))['sec-websocket-protocol'], 'chat');
  assert.equal((await headers(['v2.chat', 'v1.chat']))['sec-websocket-protocol'], 'v2.chat');
  assert.equal((await headers([]))['sec-websocket-protocol'], undefined);
});

test('plain HTTP on a /ws/ path (GET, POST): 400 saying the client does not wish to upgrade; an upgrade by POST: 400', async () => {
  const get = await fetch(`${node.url}/ws/foobar?subscribe-broadcast`, { signal: AbortSignal.timeout(WAIT) });
  assert.equal(get.status, 400);
  assert.equal(await get.text(), 'Client does not wish to upgrade to a websocket');
  const post = await fetch(`${node.url}/ws/foobar`, { method: 'POST', body: 'x', signal: AbortSignal.timeout(WAIT) });
  assert.equal(post.status, 400);
  assert.equal(await post.text(), 'Client does not wish to upgrade to a websocket');
  const h2c = await rawHttp(node.port, 'GET /ws/foobar HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
  assert.equal(h2c.status, 400);
  assert.equal(h2c.body, 'Client does not wish to upgrade to a websocket');
  const postUpgrade = await rawHttp(
    node.port,
    'POST /ws/foobar HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n',
  );
  assert.equal(postUpgrade.status, 400);
  assert.equal(postUpgrade.body, 'HTTP method must be a GET');
  // Paths outside the prefix are not the dialect's.
  assert.equal((await fetch(`${node.url}/wsx/foobar`, { signal: AbortSignal.timeout(WAIT) })).status, 404);
});

test('a page from another origin is refused (403); its own origin and no origin are accepted', async () => {
  await assert.rejects(open('o', 'subscribe-broadcast', { headers: { Origin: 'https://evil.example' } }), (err: { status?: number }) => err.status === 403);
  await open('o', 'subscribe-broadcast', { headers: { Origin: `http://127.0.0.1:${node.port}` } });
  await open('o', 'subscribe-broadcast');
});

test('a message over max_message_size closes with 1009; the others still flow', async () => {
  const a = await open('size', 'subscribe-broadcast&publish-broadcast');
  const b = await open('size', 'subscribe-broadcast');
  await a.send(Buffer.alloc(65_537, 0x61));
  assert.equal((await a.waitClose()).code, 1009);
  const c = await open('size', 'publish-broadcast');
  await c.send('still here');
  await b.waitCount(1);
  assert.deepEqual(b.texts, ['still here']);
});

test('close codes 1000–1015 (reserved ones included) are normal closes: message published, close answered, server fine', async () => {
  const watcher = await open('codes', 'subscribe-broadcast');
  const reserved = new Set([1004, 1005, 1006, 1015]);
  const cases: Array<{ code: number | undefined }> = [{ code: undefined }];
  for (let code = 1000; code <= 1015; code++) cases.push({ code });
  for (const { code } of cases) {
    const raw = await RawSocket.open(node.port, '/ws/codes?publish-broadcast');
    raw.sendFrames([
      [0x1, Buffer.from(`bye ${code ?? 'empty'}`)],
      [0x8, code === undefined ? Buffer.alloc(0) : RawSocket.closePayload(code, 'client says bye')],
    ]);
    const reply = await raw.waitFrame(0x8);
    const replied = reply.payload.length >= 2 ? reply.payload.readUInt16BE(0) : undefined;
    if (code === undefined) assert.equal(replied, undefined, 'an empty close is answered with an empty close');
    else assert.equal(replied, reserved.has(code) ? 1000 : code, `close code ${code}`);
    await raw.waitEnd();
  }
  await watcher.waitCount(cases.length);
  assert.deepEqual(
    watcher.texts,
    cases.map(({ code }) => `bye ${code ?? 'empty'}`),
  );
  // Still serving.
  const after = await open('codes', 'publish-broadcast');
  await after.send('after');
  await watcher.waitCount(cases.length + 1);
});

test('a client that stops reading is closed (1008) instead of growing the server memory', async () => {
  const raw = await RawSocket.open(node.port, '/ws/slow?subscribe-broadcast');
  raw.pause();
  const pub = await open('slow', 'publish-broadcast');
  const chunk = Buffer.alloc(60_000, 0x62);
  for (let i = 0; i < 400; i++) await pub.send(Buffer.concat([Buffer.from(String(i)), chunk]));
  raw.resume();
  const close = await raw.waitFrame(0x8, 10_000);
  assert.equal(close.payload.readUInt16BE(0), 1008);
  assert.ok(raw.frames.filter((f) => f.opcode === 0x1).length < 400);
  raw.destroy();
});

test('a configured path prefix (WEBSOCKET_URL) takes the place of /ws/', async () => {
  const other = await startWs4Redis({ path_prefix: '/realtime/socket/', allowed_channels: ['subscribe-broadcast', 'publish-broadcast'] });
  try {
    const sub = await W4RClient.open(wsUrl(other, 'room/1', 'subscribe-broadcast', '/realtime/socket/'));
    const pub = await W4RClient.open(wsUrl(other, 'room%2F1', 'publish-broadcast', '/realtime/socket/'));
    await pub.send('same facility, decoded');
    await sub.waitCount(1);
    await assert.rejects(W4RClient.open(wsUrl(other, 'room/1', 'subscribe-broadcast')), (err: { status?: number }) => err.status === 404);
    const plain = await fetch(`${other.url}/realtime/socket/room`, { signal: AbortSignal.timeout(WAIT) });
    assert.equal(plain.status, 400);
    await Promise.all([sub.close(), pub.close()]);
  } finally {
    await other.close();
  }
});
