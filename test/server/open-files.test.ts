// Each connection is a file descriptor, and past the process's open-file limit new connections are
// closed unanswered with nothing in Node to see it (libuv accepts and closes them): a node says its
// limit when it starts and warns while its connections leave less than a tenth of it, and at least
// 64, for its other descriptors (about 20 when idle). Run under `prlimit` with a limit of 200
// (util-linux, on every Debian machine): the warning comes from 136 connections.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { until } from '../helpers/herald.js';
import { LAUNCHER, spawnHerald, type HeraldProcess } from '../helpers/process.js';

const LIMIT = 200;

/** Opens `n` native WebSockets to the node (connected, nothing subscribed). */
async function open(node: HeraldProcess, n: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(node.wsUrl);
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
  }
  return sockets;
}

/** The node's JSON log lines with this message. */
function lines(node: HeraldProcess, msg: string): Array<Record<string, unknown>> {
  return node
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith(msg));
}

test('a node under an open-file limit of 200 logs it when it starts, and warns once its connections leave less than 64 for the rest (not before)', async () => {
  const node = await spawnHerald({ log_level: 'info', client: { allow_anonymous_connect_without_token: true } }, ['prlimit', `--nofile=${LIMIT}:${LIMIT}`, LAUNCHER]);
  const sockets: WebSocket[] = [];
  try {
    await until(() => lines(node, 'herald started').length === 1, 5000, 'the started line');
    assert.equal(lines(node, 'herald started')[0]!.open_file_limit, LIMIT);
    sockets.push(...(await open(node, 130)));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(lines(node, 'connections near the open-file limit').length, 0, 'no warning at 130 of 200');
    sockets.push(...(await open(node, 10)));
    await until(() => lines(node, 'connections near the open-file limit').length > 0, 5000, 'the warning');
    const warning = lines(node, 'connections near the open-file limit')[0]!;
    assert.equal(warning.level, 40);
    assert.equal(warning.open_file_limit, LIMIT);
    assert.ok((warning.connections as number) >= LIMIT - 64 && (warning.connections as number) <= 140, JSON.stringify(warning));
    assert.match(warning.msg as string, /raise the limit \(ulimit -n/);
    // At most one warning every 10 s, however many connections come.
    sockets.push(...(await open(node, 5)));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(lines(node, 'connections near the open-file limit').length, 1);
  } finally {
    for (const ws of sockets) ws.terminate();
    await node.kill();
  }
});
