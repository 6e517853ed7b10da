// The Webdis WebSocket at the byte level, over plain TCP: hand-written handshakes as clients in the
// wild send them (no Sec-WebSocket-Version, lowercase headers, no Connection header, a key that is
// not base64), text frames only, ping/pong byte for byte, and the close codes for unmasked frames
// (1002), invalid UTF-8 (1007) and oversized messages (1009).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { clientFrame, minimalHandshake, startWebdis, TcpWs, type WebdisNode } from './helpers.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const accept = (key: string) => createHash('sha1').update(key + GUID).digest('base64');

let node: WebdisNode;
const sockets: TcpWs[] = [];

before(async () => {
  node = await startWebdis({ webdis: { max_message_size: 4096, path_prefix: '/webdis' } });
});

after(async () => {
  for (const s of sockets) s.destroy();
  await node.close();
});

async function upgraded(head: string, port = node.webdisPort): Promise<{ ws: TcpWs; response: string }> {
  const ws = await TcpWs.connect(port);
  sockets.push(ws);
  const response = await ws.handshake(head);
  return { ws, response };
}

function header(response: string, name: string): string | undefined {
  const line = response.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(line.indexOf(':') + 1).trim();
}

async function pingPong(ws: TcpWs): Promise<void> {
  ws.write(clientFrame(0x1, '["PING"]'));
  const reply = await ws.frame();
  assert.equal(reply.opcode, 0x1, 'a text frame');
  assert.equal(reply.fin, true);
  assert.equal(reply.masked, false);
  assert.equal(reply.payload.toString(), '{"PING":[true,"PONG"]}');
}

test('a minimal handshake without Sec-WebSocket-Version is accepted (RFC 6455 sample key)', async () => {
  const { ws, response } = await upgraded(minimalHandshake('/.json'));
  assert.match(response, /^HTTP\/1\.1 101 /);
  assert.equal(header(response, 'Sec-WebSocket-Accept'), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.equal(header(response, 'Upgrade')?.toLowerCase(), 'websocket');
  await pingPong(ws);
});

test('lowercase headers, no Host, "Upgrade: WebSocket", no version', async () => {
  const key = 'x3JJHMbDL1EzLkh9GBhXDw==';
  const head = ['GET /.json HTTP/1.1', 'upgrade: WebSocket', 'connection: upgrade', `sec-websocket-key: ${key}`, '', ''].join('\r\n');
  const { ws, response } = await upgraded(head);
  assert.match(response, /^HTTP\/1\.1 101 /);
  assert.equal(header(response, 'sec-websocket-accept'), accept(key));
  await pingPong(ws);
});

test('no Connection header at all (Webdis upgrades on the Upgrade header alone)', async () => {
  const key = 'AQIDBAUGBwgJCgsMDQ4PEA==';
  const head = ['GET /.json HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', `Sec-WebSocket-Key: ${key}`, '', ''].join('\r\n');
  const { ws, response } = await upgraded(head);
  assert.match(response, /^HTTP\/1\.1 101 /);
  assert.equal(header(response, 'Sec-WebSocket-Accept'), accept(key));
  await pingPong(ws);
});

test('a key that is not 16 base64-encoded bytes (16–32 characters, as Webdis accepts)', async () => {
  const key = '0123456789abcdef-key';
  const { ws, response } = await upgraded(minimalHandshake('/.json', [], key));
  assert.match(response, /^HTTP\/1\.1 101 /);
  assert.equal(header(response, 'Sec-WebSocket-Accept'), accept(key));
  await pingPong(ws);
});

test('the C-client handshake Webdis ships with (Origin, no version) on /.raw', async () => {
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  const head = ['GET /.raw HTTP/1.1', `Host: 127.0.0.1:${node.webdisPort}`, 'Connection: Upgrade', 'Upgrade: WebSocket', 'Origin: http://127.0.0.1', `Sec-WebSocket-Key: ${key}`, '', ''].join('\r\n');
  const { ws, response } = await upgraded(head);
  assert.match(response, /^HTTP\/1\.1 101 /);
  ws.write(clientFrame(0x1, '*1\r\n$4\r\nPING\r\n'));
  const reply = await ws.frame();
  assert.equal(reply.opcode, 0x1, 'RESP replies are text frames too');
  assert.equal(reply.payload.toString(), '+PONG\r\n');
});

test('a minimal handshake under webdis.path_prefix on the main port', async () => {
  const { ws, response } = await upgraded(minimalHandshake('/webdis/.json'), node.port);
  assert.match(response, /^HTTP\/1\.1 101 /);
  await pingPong(ws);
});

for (const [name, head] of [
  ['standard', minimalHandshake('/.json', ['Sec-WebSocket-Version: 13'])],
  ['minimal', minimalHandshake('/.json')],
] as const) {
  test(`${name} handshake: an empty ping gets exactly 8A 00; a ping with data gets it back`, async () => {
    const { ws } = await upgraded(head);
    ws.write(clientFrame(0x9, Buffer.alloc(0)));
    assert.deepEqual((await ws.frame()).bytes, Buffer.from([0x8a, 0x00]));
    ws.write(clientFrame(0x9, 'abc'));
    assert.deepEqual((await ws.frame()).bytes, Buffer.from([0x8a, 0x03, 0x61, 0x62, 0x63]));
    await pingPong(ws);
  });

  test(`${name} handshake: an unmasked client frame is closed with 1002`, async () => {
    const { ws } = await upgraded(head);
    ws.write(clientFrame(0x1, '["PING"]', false));
    const close = await ws.frame();
    assert.equal(close.opcode, 0x8);
    assert.equal(close.payload.readUInt16BE(0), 1002);
    await ws.closed();
  });

  test(`${name} handshake: invalid UTF-8 in a text frame is closed with 1007`, async () => {
    const { ws } = await upgraded(head);
    ws.write(clientFrame(0x1, Buffer.from([0x5b, 0x22, 0xc3, 0x28, 0x22, 0x5d])));
    const close = await ws.frame();
    assert.equal(close.opcode, 0x8);
    assert.equal(close.payload.readUInt16BE(0), 1007);
    await ws.closed();
  });

  test(`${name} handshake: a message over webdis.max_message_size is closed with 1009`, async () => {
    const { ws } = await upgraded(head);
    ws.write(clientFrame(0x1, JSON.stringify(['PUBLISH', 'c', 'x'.repeat(5000)])));
    const close = await ws.frame();
    assert.equal(close.opcode, 0x8);
    assert.equal(close.payload.readUInt16BE(0), 1009);
    await ws.closed();
  });

  test(`${name} handshake: a client close is answered with a close and the connection ends`, async () => {
    const { ws } = await upgraded(head);
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(1000);
    ws.write(clientFrame(0x8, payload));
    const close = await ws.frame();
    assert.equal(close.opcode, 0x8);
    assert.equal(close.payload.readUInt16BE(0), 1000);
    await ws.closed();
  });
}

test('handshakes Webdis would refuse too: no key, a key out of bounds', async () => {
  const noKey = await TcpWs.connect(node.webdisPort);
  sockets.push(noKey);
  assert.match(await noKey.handshake(['GET /.json HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade', '', ''].join('\r\n')), /^HTTP\/1\.1 400 /);
  const shortKey = await TcpWs.connect(node.webdisPort);
  sockets.push(shortKey);
  assert.match(await shortKey.handshake(minimalHandshake('/.json', [], 'short')), /^HTTP\/1\.1 400 /);
});

test('paths as Webdis reads them: by prefix (/.json/, /.jsonx are JSON, /.raw… RESP); any other path upgrades, and its first message ends the connection', async () => {
  for (const path of ['/.json/', '/.jsonx', '/webdis/.json/x']) {
    const { ws, response } = await upgraded(minimalHandshake(path), path.startsWith('/webdis') ? node.port : node.webdisPort);
    assert.match(response, /^HTTP\/1\.1 101 /, path);
    await pingPong(ws);
  }
  const { ws: raw } = await upgraded(minimalHandshake('/.rawx'));
  raw.write(clientFrame(0x1, '*1\r\n$4\r\nPING\r\n'));
  assert.equal((await raw.frame()).payload.toString(), '+PONG\r\n');

  const { ws: elsewhere, response } = await upgraded(minimalHandshake('/elsewhere'));
  assert.match(response, /^HTTP\/1\.1 101 /, 'the handshake succeeds, as with Webdis');
  elsewhere.write(clientFrame(0x9, ''));
  const pong = await elsewhere.frame();
  assert.equal(pong.opcode, 0xa, 'pings are answered');
  elsewhere.write(clientFrame(0x1, '["PING"]'));
  await elsewhere.closed();
});

test('frames from a client split across TCP writes, and several in one write, are all answered in order', async () => {
  const { ws } = await upgraded(minimalHandshake('/.json'));
  const a = clientFrame(0x1, '["PING","one"]');
  const b = clientFrame(0x1, '["PING","two"]');
  ws.write(a.subarray(0, 3));
  await new Promise((r) => setTimeout(r, 30));
  ws.write(Buffer.concat([a.subarray(3), b]));
  assert.equal((await ws.frame()).payload.toString(), '{"PING":"one"}');
  assert.equal((await ws.frame()).payload.toString(), '{"PING":"two"}');
});
