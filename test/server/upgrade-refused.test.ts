// An upgrade request that Herald turns away gets an HTTP answer, and a client that then resets the
// connection (or resets it before reading the answer) does not take the process down.
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { test } from 'node:test';
import { API_KEY } from '../helpers/herald.js';
import { spawnHerald, type HeraldProcess } from '../helpers/process.js';

const upgradeRequest = (target: string, origin?: string): string =>
  `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${origin ? `Origin: ${origin}\r\n` : ''}\r\n`;

function connect(node: HeraldProcess): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(node.port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends the request, reads the status line, then resets the connection; returns the status. */
async function statusThenReset(node: HeraldProcess, target: string, origin?: string): Promise<number> {
  const socket = await connect(node);
  socket.on('error', () => undefined);
  const status = new Promise<number>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no answer to ${target}`)), 5000);
    socket.on('data', (d) => {
      text += d;
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  socket.write(upgradeRequest(target, origin));
  try {
    return await status;
  } finally {
    socket.resetAndDestroy();
  }
}

/** Sends the request and resets at once, without reading the answer. */
async function resetAtOnce(node: HeraldProcess, target: string, origin?: string): Promise<void> {
  const socket = await connect(node);
  socket.on('error', () => undefined);
  socket.write(upgradeRequest(target, origin), () => socket.resetAndDestroy());
}

async function stillServes(node: HeraldProcess): Promise<void> {
  assert.equal(node.proc.exitCode, null, `herald exited: ${node.output()}`);
  assert.equal(node.proc.signalCode, null, `herald was killed: ${node.output()}`);
  const res = await fetch(`${node.url}/api/info`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: '{}' });
  assert.equal(res.status, 200);
}

test('a refused upgrade is answered, and a client resetting the connection afterwards does not crash Herald', async () => {
  const node = await spawnHerald({ client: { allowed_origins: ['http://app.example'] } });
  try {
    const cases: Array<[string, string | undefined, number]> = [
      ['/nope', undefined, 404],
      ['//ws/foo', undefined, 404],
      ['/connection/websocket', 'http://evil.example', 403],
      ['http://[bad/', undefined, 400],
    ];
    for (let round = 0; round < 5; round++) {
      for (const [target, origin, expected] of cases) {
        assert.equal(await statusThenReset(node, target, origin), expected, target);
        await resetAtOnce(node, target, origin);
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    await stillServes(node);
    assert.doesNotMatch(node.output(), /ECONNRESET|EPIPE|uncaught/i);
    // A plain request whose target is not a URL: 400, not a failure.
    const plain = await connect(node);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      plain.on('data', (d) => (text += d));
      plain.on('close', () => resolve(text));
      plain.on('error', () => resolve(text));
      plain.end('GET http://[::1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    });
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.doesNotMatch(node.output(), /request failed/);
  } finally {
    await node.kill('SIGTERM');
  }
});
