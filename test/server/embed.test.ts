// createHerald({ server }): Herald on the application's own HTTP server, next to its routes; the
// origin check for browser upgrades; unknown paths.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { pino } from 'pino';
import { createHerald, loadConfig } from '../../src/index.js';
import { testConfig, until } from '../helpers/herald.js';

test('embedded in an application server: its routes stay its own, Herald serves the WebSocket and, when asked, the API', async () => {
  // What the application sees once handleRequest resolves: the API's answer already sent.
  const answered: Array<[string, boolean]> = [];
  const server = createServer(async (req, res) => {
    if (req.url === '/app') return void res.writeHead(200).end('app');
    if (await herald.handleRequest(req, res)) return void answered.push([req.url ?? '', res.writableFinished]);
    res.writeHead(404).end('app 404');
  });
  const lines: Array<Record<string, unknown>> = [];
  const herald = createHerald({
    server,
    logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }),
    config: loadConfig({
      values: testConfig({
        client: { allow_anonymous_connect_without_token: true },
        channel: { without_namespace: { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true } },
      }),
    }),
  });
  await herald.start();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const started = lines.find((l) => l.msg === 'herald started');
    assert.deepEqual([started?.embedded, started?.port], [true, undefined], 'no port of its own to log (the application listens later)');
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/app`)).text(), 'app');
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/other`)).text(), 'app 404');
    const c = new Centrifuge(`ws://127.0.0.1:${port}/connection/websocket`, { websocket: WebSocket });
    const sub = c.newSubscription('news');
    const got: unknown[] = [];
    sub.on('publication', (ctx) => got.push(ctx.data));
    sub.subscribe();
    c.connect();
    await sub.ready(5000);
    await herald.publish('news', { hello: 'embedded' });
    await until(() => got.length === 1);
    assert.deepEqual(got, [{ hello: 'embedded' }]);
    c.disconnect();
    const api = await fetch(`http://127.0.0.1:${port}/api/info`, { method: 'POST', headers: { 'X-API-Key': 'test-api-key' }, body: '{}' });
    assert.equal(api.status, 200);
    const refused = await fetch(`http://127.0.0.1:${port}/api/publish`, { method: 'POST', body: '{}' });
    assert.equal(refused.status, 401);
    await until(() => answered.length === 2);
    assert.deepEqual(answered, [
      ['/api/info', true],
      ['/api/publish', true],
    ]);
  } finally {
    await herald.close();
    await new Promise((r) => server.close(r));
  }
});

test('browser upgrades from another origin are refused unless allowed; same origin and non-browsers pass', async () => {
  const herald = createHerald({
    config: loadConfig({ values: testConfig({ client: { allowed_origins: ['https://*.example.com'] } }) }),
  });
  await herald.start();
  const url = `ws://127.0.0.1:${herald.port}/connection/websocket`;
  const tryOrigin = (origin?: string) =>
    new Promise<string>((resolve) => {
      const ws = new WebSocket(url, origin ? { origin } : {});
      ws.on('open', () => {
        ws.close();
        resolve('open');
      });
      ws.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      ws.on('error', () => resolve('error'));
    });
  try {
    assert.equal(await tryOrigin(), 'open');
    assert.equal(await tryOrigin(`http://127.0.0.1:${herald.port}`), 'open');
    assert.equal(await tryOrigin('https://app.example.com'), 'open');
    assert.equal(await tryOrigin('https://evil.test'), '403');
  } finally {
    await herald.close();
  }
});

test('an upgrade on an unknown path of Herald\'s own server gets 404', async () => {
  const herald = createHerald({ config: loadConfig({ values: testConfig() }) });
  await herald.start();
  try {
    const status = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${herald.port}/nope`);
      ws.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      ws.on('open', () => resolve('open'));
      ws.on('error', () => resolve('error'));
    });
    assert.equal(status, '404');
  } finally {
    await herald.close();
  }
});

test('demo jobs: at most 20 run at once; past that POST /demo/jobs answers 429', async () => {
  const herald = createHerald({
    config: loadConfig({ values: testConfig({ demo: { enabled: true, dashboard_max_interval: '24h', job_step_delay: '1h' }, channel: { namespaces: [{ name: 'jobs' }, { name: 'dashboard' }] } }) }),
  });
  await herald.start();
  try {
    const post = (job: string) => fetch(`http://127.0.0.1:${herald.port}/demo/jobs`, { method: 'POST', body: JSON.stringify({ job }) }).then((r) => r.status);
    const statuses: number[] = [];
    for (let i = 0; i < 22; i++) statuses.push(await post(`j${i}`));
    assert.deepEqual(statuses, [...Array(20).fill(202), 429, 429]);
  } finally {
    await herald.close();
  }
});

test('demo static files: pages and the SDK bundle; bad paths are 404, never a crash or an escape', async () => {
  const herald = createHerald({ config: loadConfig({ values: testConfig({ demo: { enabled: true, dashboard_max_interval: '24h' }, channel: { namespaces: [{ name: 'jobs' }, { name: 'dashboard' }] } }) }) });
  await herald.start();
  const base = `http://127.0.0.1:${herald.port}`;
  try {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const sdk = await fetch(`${base}/vendor/centrifuge.js`);
    assert.equal(sdk.status, 200);
    assert.match(await sdk.text(), /Centrifuge/);
    for (const bad of ['/%E0', '/..%2F..%2Fpackage.json', '/nope.html']) assert.equal((await fetch(base + bad)).status, 404, bad);
  } finally {
    await herald.close();
  }
});
