// A burst of connections while Herald cannot accept (busy, or not yet scheduled): the kernel queues
// them for it instead of dropping handshakes, as it does beyond Node's default queue of 511.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { test } from 'node:test';
import { spawnHerald } from '../helpers/process.js';

/** Opens `n` connections to `port`; resolves with how many completed their TCP handshake within 3 s. */
async function burst(port: number, n: number, sockets: Socket[]): Promise<number> {
  const connected = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<boolean>((resolve) => {
          const s = createConnection(port, '127.0.0.1');
          sockets.push(s);
          const timer = setTimeout(() => resolve(false), 3000);
          s.once('connect', () => {
            clearTimeout(timer);
            resolve(true);
          });
          s.once('error', () => {
            clearTimeout(timer);
            resolve(false);
          });
        }),
    ),
  );
  return connected.filter(Boolean).length;
}

test('a burst of 1,000 connections to a stopped node all complete their TCP handshake, on both ports', async () => {
  // Linux caps every listen queue at net.core.somaxconn (4096 by default).
  const n = Math.min(1000, Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')));
  const node = await spawnHerald({ log_level: 'info', webdis: { enabled: true, port: 0 } });
  const webdisPort = Number(/"port":(\d+)[^\n]*"msg":"webdis listening"/.exec(node.output())?.[1]);
  assert.ok(webdisPort > 0, `the Webdis port is logged: ${node.output()}`);
  const sockets: Socket[] = [];
  node.proc.kill('SIGSTOP');
  try {
    assert.equal(await burst(node.port, n, sockets), n, 'main port');
    assert.equal(await burst(webdisPort, n, sockets), n, 'Webdis port');
  } finally {
    node.proc.kill('SIGCONT');
    for (const s of sockets) s.destroy();
    await node.kill('SIGTERM');
  }
});
