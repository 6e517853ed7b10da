// A burst of connections while Herald cannot accept (busy, or not yet scheduled): the kernel queues
// them for it instead of dropping handshakes, as it does beyond Node's default queue of 511.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { test } from 'node:test';
import { spawnHerald } from '../helpers/process.js';

test('a burst of 1,000 connections to a stopped node all complete their TCP handshake', async () => {
  // Linux caps every listen queue at net.core.somaxconn (4096 by default).
  const n = Math.min(1000, Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')));
  const node = await spawnHerald();
  const sockets: Socket[] = [];
  node.proc.kill('SIGSTOP');
  try {
    const connected = await Promise.all(
      Array.from(
        { length: n },
        () =>
          new Promise<boolean>((resolve) => {
            const s = createConnection(node.port, '127.0.0.1');
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
    assert.equal(connected.filter(Boolean).length, n);
  } finally {
    node.proc.kill('SIGCONT');
    for (const s of sockets) s.destroy();
    await node.kill('SIGTERM');
  }
});
