// A page in Debian's Chromium with a reconnecting heartbeat client that behaves as ws4redis.js does
// (heartbeat every 5 s, closes after 3 missed ones, reconnects after a random delay of up to
// min(2^k - 1, 30) s). The page is served by the "application" on its own origin, messages come from
// Ws4RedisPublisher through Redis, and the page keeps receiving after Herald is restarted.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { Ws4RedisPublisher } from '../../src/index.js';
import type { TestNode } from '../helpers/herald.js';
import { freePort, RedisProcess } from '../helpers/redis.js';
import { startWs4Redis } from './helpers.js';
import { launchChromium } from '../helpers/browser.js';

// This file runs from dist/test/ws4redis/.
const ARTIFACTS = join(fileURLToPath(new URL('../../../', import.meta.url)), 'test-artifacts');
const HEARTBEAT = '--heartbeat--';
const WAIT = 20_000;

/** The page: plain DOM, and a client written the way ws4redis.js is (without jQuery). */
function page(uri: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ws4redis on Herald</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d2330; background: #f6f7fb; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  .card { background: #fff; border: 1px solid #dde1ea; border-radius: 8px; padding: 1rem 1.25rem; max-width: 38rem; }
  .row { display: flex; gap: 1.5rem; margin-bottom: .75rem; color: #556; }
  #status { font-weight: 600; }
  #status.connected { color: #137333; } #status.disconnected { color: #b3261e; }
  ol { margin: 0; padding-left: 1.4rem; } li { padding: .2rem 0; font-family: ui-monospace, monospace; }
</style></head>
<body><div class="card">
  <h1>Notifications (<code>/ws/news?subscribe-broadcast</code>)</h1>
  <div class="row"><span>Status: <span id="status">connecting</span></span>
    <span>Connections: <span id="connects">0</span></span><span>Heartbeats answered: <span id="beats">0</span></span></div>
  <ol id="messages"></ol>
</div>
<script>
function WS4Redis(opts) {
  var ws, timer = null, attempts = 1, heartbeat_interval = null, missed_heartbeats = 0;
  connect(opts.uri);
  function connect(uri) {
    try {
      ws = new WebSocket(uri);
      ws.onopen = on_open; ws.onmessage = on_message; ws.onerror = function () {}; ws.onclose = on_close;
      timer = null;
    } catch (err) { on_close(); }
  }
  function send_heartbeat() {
    try {
      missed_heartbeats++;
      if (missed_heartbeats > 3) throw new Error('Too many missed heartbeats.');
      ws.send(opts.heartbeat_msg);
    } catch (e) {
      clearInterval(heartbeat_interval);
      heartbeat_interval = null;
      if (ws.readyState !== 2 && ws.readyState !== 3) ws.close();
    }
  }
  function on_open() {
    attempts = 1;
    if (opts.heartbeat_msg && heartbeat_interval === null) {
      missed_heartbeats = 0;
      heartbeat_interval = setInterval(send_heartbeat, 5000);
    }
    opts.connected();
  }
  function on_message(evt) {
    if (opts.heartbeat_msg && evt.data === opts.heartbeat_msg) { missed_heartbeats = 0; opts.heartbeat(); }
    else opts.receive_message(evt.data);
  }
  function on_close(evt) {
    opts.disconnected(evt);
    if (!timer) {
      var interval = generate_interval(attempts);
      timer = setTimeout(function () { attempts++; connect(opts.uri); }, interval);
    }
  }
  function generate_interval(k) {
    var max = (Math.pow(2, k) - 1) * 1000;
    if (max > 30 * 1000) max = 30 * 1000;
    return Math.random() * max;
  }
  return { send_message: function (m) { ws.send(m); } };
}
var statusEl = document.getElementById('status');
window.__received = [];
WS4Redis({
  uri: ${JSON.stringify(uri)},
  heartbeat_msg: ${JSON.stringify(HEARTBEAT)},
  connected: function () {
    statusEl.textContent = 'connected'; statusEl.className = 'connected';
    var c = document.getElementById('connects'); c.textContent = String(Number(c.textContent) + 1);
  },
  disconnected: function () { statusEl.textContent = 'disconnected'; statusEl.className = 'disconnected'; },
  heartbeat: function () { var b = document.getElementById('beats'); b.textContent = String(Number(b.textContent) + 1); },
  receive_message: function (msg) {
    window.__received.push(msg);
    var li = document.createElement('li'); li.textContent = msg;
    document.getElementById('messages').appendChild(li);
  }
});
</script></body></html>`;
}

let redis: RedisProcess;
let browser: Browser;
let app: Server;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  redis = await RedisProcess.start();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  app?.closeAllConnections();
  await new Promise((r) => (app ? app.close(r) : r(undefined)));
  await redis?.stop();
});

test('a ws4redis.js-style page keeps receiving across a Herald restart; heartbeats are answered', async () => {
  const heraldPort = await freePort();
  const uri = `ws://127.0.0.1:${heraldPort}/ws/news?subscribe-broadcast`;
  app = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(page(uri)));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appOrigin = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
  const start = () =>
    startWs4Redis(
      { heartbeat: HEARTBEAT },
      { port: heraldPort, engine: { type: 'redis', redis: { url: redis.url } }, client: { allowed_origins: [appOrigin] } },
    );
  const redisClient = redis.client();
  const publisher = new Ws4RedisPublisher({ redis: redisClient, facility: 'news', broadcast: true, heartbeat: HEARTBEAT });
  let node: TestNode | undefined = await start();
  const context = await browser.newContext({ viewport: { width: 720, height: 420 } });
  try {
    const p = await context.newPage();
    p.setDefaultTimeout(WAIT);
    const problems: string[] = [];
    p.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    p.on('console', (msg) => {
      // While Herald is down, the browser reports the refused reconnects: expected.
      if (msg.type() === 'error' && !/WebSocket connection to .* failed/.test(msg.text())) problems.push(msg.text());
    });
    const res = await p.goto(appOrigin + '/');
    assert.equal(res?.status(), 200);
    const received = () => p.evaluate(() => (window as unknown as { __received: string[] }).__received.slice());
    const waitReceived = (text: string) =>
      p.waitForFunction((t) => (window as unknown as { __received: string[] }).__received.includes(t), text, { timeout: WAIT, polling: 50 });

    await p.waitForFunction(() => document.getElementById('status')?.textContent === 'connected', undefined, { timeout: WAIT });
    // Herald subscribes to Redis right after the upgrade: publish until the page has it.
    await until(async () => (await publisher.publishMessage('before the restart')) > 0);
    await waitReceived('before the restart');

    // ws4redis.js sends its first heartbeat 5 s after connecting; Herald answers it, and the page
    // does not count it as a message.
    await p.waitForFunction(() => Number(document.getElementById('beats')?.textContent) >= 1, undefined, { timeout: WAIT });

    await node.close();
    node = undefined;
    await p.waitForFunction(() => document.getElementById('status')?.textContent === 'disconnected', undefined, { timeout: WAIT });
    // Published while no Herald runs: kept in Redis, sent first when the page is back.
    await publisher.publishMessage('while Herald was down');
    node = await start();
    await waitReceived('while Herald was down');
    assert.equal(await p.textContent('#status'), 'connected');
    assert.equal(await p.textContent('#connects'), '2');
    await until(async () => (await publisher.publishMessage('after the restart')) > 0);
    await waitReceived('after the restart');

    const got = await received();
    assert.ok(!got.includes(HEARTBEAT), 'the heartbeat is never handed to the application');
    assert.deepEqual(got.slice(0, 1), ['before the restart']);
    assert.ok(got.indexOf('while Herald was down') < got.indexOf('after the restart'));
    await p.screenshot({ path: join(ARTIFACTS, 'ws4redis-page.png'), animations: 'disabled' });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
    await node?.close();
    redisClient.disconnect();
  }
});

async function until(check: () => Promise<boolean>, ms = WAIT): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
