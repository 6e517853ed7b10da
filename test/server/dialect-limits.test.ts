// The connection limits of the Webdis and ws4redis dialects (`webdis.connection_limit`,
// `webdis.connection_rate_limit`, `ws4redis.connection_limit`, `ws4redis.connection_rate_limit`): past
// one, a new WebSocket (or a Webdis comet stream) is answered 503 naming the limit, before its
// upgrade; each dialect counts only its own connections; refusals are counted in the metrics.
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { refusedCount, until } from '../helpers/herald.js';
import { sleep, upgradeAnswer } from '../helpers/raw.js';
import { startWebdis, WdClient } from '../webdis/helpers.js';
import { IdentityHook, json, startWs4Redis, W4RClient, wsUrl } from '../ws4redis/helpers.js';

/** Opens a Webdis comet stream; resolves with its answer (the body left streaming when 200). */
function comet(port: number, path: string): Promise<{ res: IncomingMessage; body: () => Promise<string>; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      const ended = new Promise<string>((r) => res.on('end', () => r(text)));
      resolve({ res, body: () => ended, close: () => req.destroy() });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

test('webdis.connection_limit: WebSockets and comet streams past it are answered 503 naming the limit; native connections are not counted', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const node = await startWebdis({ metrics: { enabled: true }, webdis: { connection_limit: 2 } }, logger);
  const full = 'node connection limit reached (webdis.connection_limit), retry later\n';
  try {
    const ws = await WdClient.open(`${node.wsBase}/.json`);
    await ws.call('SUBSCRIBE', 'news');
    const stream = await comet(node.webdisPort, '/SUBSCRIBE/news');
    assert.equal(stream.res.statusCode, 200);
    assert.deepEqual(await upgradeAnswer(`${node.wsBase}/.json`), { status: 503, body: full });
    assert.deepEqual(await upgradeAnswer(`${node.wsBase}/.raw`), { status: 503, body: full });
    const refusedComet = await comet(node.webdisPort, '/SUBSCRIBE/news');
    assert.equal(refusedComet.res.statusCode, 503);
    assert.equal(await refusedComet.body(), full);
    // Other Webdis requests are not connections: they are answered as ever.
    const publish = await fetch(`${node.httpBase}/PUBLISH/news/hello`);
    assert.equal(await publish.text(), '{"PUBLISH":2}', 'both held subscribers got it');
    // The native dialect has limits of its own (none here).
    assert.equal((await upgradeAnswer(node.wsUrl)).status, 101);
    assert.equal(await refusedCount(node, 'webdis', 'connection_limit'), 3);
    assert.equal(lines.filter((l) => /webdis\.connection_limit/.test(String(l.msg))).length, 1, 'one warning, not one per refusal');

    // A place freed by a socket that left is taken again; so is one freed by a stream.
    ws.ws.close();
    await until(() => ws.closeInfo !== undefined);
    await until(async () => (await upgradeAnswer(`${node.wsBase}/.json`)).status === 101, 5000, 'the freed place');
    stream.close();
    await until(async () => {
      const next = await comet(node.webdisPort, '/SUBSCRIBE/news');
      next.close();
      return next.res.statusCode === 200;
    }, 5000, 'the place the stream freed');
  } finally {
    await node.close();
  }
});

test('Webdis comet streams pipelined on one keep-alive connection give back their places when the connection goes', async () => {
  const node = await startWebdis({ webdis: { connection_limit: 4, max_node_patterns: 4 } });
  const clients = async () => ((await node.herald.api('info')) as { nodes: Array<{ num_clients: number }> }).nodes[0]!.num_clients;
  try {
    for (let i = 0; i < 3; i++) {
      const socket = connect(node.webdisPort, '127.0.0.1');
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (text += d));
      socket.on('error', () => undefined);
      // The second waits in Node's queue behind the first, which never ends.
      socket.write(`GET /PSUBSCRIBE/a${i}* HTTP/1.1\r\nHost: x\r\n\r\nGET /PSUBSCRIBE/b${i}* HTTP/1.1\r\nHost: x\r\n\r\n`);
      await until(() => text.includes('psubscribe'), 5000, 'the first stream');
      await until(async () => (await clients()) === 2, 5000, 'both streams counted');
      socket.destroy();
      await until(async () => (await clients()) === 0, 5000, `both places given back (${i})`);
    }
    // The patterns are given back too: four new ones fit.
    const c = await WdClient.open(`${node.wsBase}/.json`);
    c.send('PSUBSCRIBE', 'p1*', 'p2*', 'p3*', 'p4*');
    assert.deepEqual((await c.take(4)).map((f) => JSON.parse(f).PSUBSCRIBE[0]), ['psubscribe', 'psubscribe', 'psubscribe', 'psubscribe']);
    c.ws.close();
  } finally {
    await node.close();
  }
});

test('webdis.connection_rate_limit: past it, 503 naming the limit, until the second refills', async () => {
  const node = await startWebdis({ metrics: { enabled: true }, webdis: { connection_rate_limit: 1 } });
  try {
    assert.equal((await upgradeAnswer(`${node.wsBase}/.json`)).status, 101);
    assert.deepEqual(await upgradeAnswer(`${node.wsBase}/.json`), { status: 503, body: 'connection rate limit reached (webdis.connection_rate_limit), retry later\n' });
    assert.equal((await comet(node.webdisPort, '/SUBSCRIBE/news')).res.statusCode, 503);
    await sleep(1100);
    assert.equal((await upgradeAnswer(`${node.wsBase}/.json`)).status, 101);
    assert.equal(await refusedCount(node, 'webdis', 'connection_rate_limit'), 2);
  } finally {
    await node.close();
  }
});

test('ws4redis.connection_limit: an upgrade still waiting for the identity hook holds its place; past the limit, 503 before the hook is asked', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const hook = await IdentityHook.start(async (call, res) => {
    await held;
    json(res, 200, { user: 'alice', channels: call.body.channels });
  });
  const node = await startWs4Redis({ identity_hook: { url: hook.url }, connection_limit: 1 }, { metrics: { enabled: true } });
  const full = 'node connection limit reached (ws4redis.connection_limit), retry later\n';
  try {
    const url = wsUrl(node, 'news', 'subscribe-broadcast');
    const first = W4RClient.open(url);
    await until(() => hook.calls.length === 1);
    assert.deepEqual(await upgradeAnswer(url), { status: 503, body: full }, 'the first, still opening, holds the one place');
    assert.equal(hook.calls.length, 1, 'the refused upgrade never reached the hook');
    release();
    const alice = await first;
    assert.deepEqual(await upgradeAnswer(url), { status: 503, body: full });
    assert.equal((await upgradeAnswer(node.wsUrl)).status, 101, 'native connections are counted apart');
    assert.equal(await refusedCount(node, 'ws4redis', 'connection_limit'), 2);
    await alice.close();
    await until(async () => (await upgradeAnswer(url)).status === 101, 5000, 'the freed place');
  } finally {
    await node.close();
    await hook.stop();
  }
});

test('ws4redis.connection_rate_limit: past it, 503 naming the limit, until the second refills', async () => {
  const node = await startWs4Redis({ connection_rate_limit: 2 }, { metrics: { enabled: true } });
  try {
    const url = wsUrl(node, 'news', 'subscribe-broadcast');
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await upgradeAnswer(url));
    assert.deepEqual(
      answers.map((a) => a.status),
      [101, 101, 503],
    );
    assert.equal(answers[2]!.body, 'connection rate limit reached (ws4redis.connection_rate_limit), retry later\n');
    await sleep(600);
    assert.equal((await upgradeAnswer(url)).status, 101);
    assert.equal(await refusedCount(node, 'ws4redis', 'connection_rate_limit'), 1);
  } finally {
    await node.close();
  }
});
