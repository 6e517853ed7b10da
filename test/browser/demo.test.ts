// The demo pages in a real browser: Debian's Chromium driven by playwright-core against a real
// Herald running the demo (herald.demo.json with port 0 and short delays). Screenshots go to
// test-artifacts/ at the repository root.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createHerald, loadConfig, type Herald } from '../../src/index.js';
import { launchChromium } from '../helpers/browser.js';

// This file runs from dist/test/browser/.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts');
const DEMO_CONFIG = join(ROOT, 'herald.demo.json');
const API_KEY = 'demo-api-key';
/** Bound of every wait in the page. */
const WAIT = 10_000;

/** The seed's three progress messages, then the end. */
const JOB_TEXTS = [
  'You have started a server side function',
  'Function running, please wait......',
  'Function still running, almost done.......',
  'done',
];


let browser: Browser;
const heralds: Herald[] = [];

/** Starts a Herald with the demo config, on a free port, quiet, with the given demo delays. */
async function startDemoHerald(delays: { job_step_delay: string; dashboard_max_interval: string }): Promise<{ herald: Herald; url: string }> {
  const config = loadConfig({
    file: DEMO_CONFIG,
    overrides: {
      port: 0,
      log_level: 'silent',
      'demo.enabled': true,
      'demo.job_step_delay': delays.job_step_delay,
      'demo.dashboard_max_interval': delays.dashboard_max_interval,
    },
  });
  assert.equal(config.http_api.key, API_KEY, 'herald.demo.json keeps the documented demo key');
  const herald = createHerald({ config });
  heralds.push(herald);
  await herald.start();
  return { herald, url: `http://127.0.0.1:${herald.port}` };
}

let base: string;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  ({ url: base } = await startDemoHerald({ job_step_delay: '200ms', dashboard_max_interval: '300ms' }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await Promise.all(heralds.map((h) => h.close()));
});

/**
 * A fresh page (own context) that fails the test on page errors and resource load failures; `init`
 * runs in the page before its own scripts.
 */
async function openPage(path: string, url = base, init?: string): Promise<{ page: Page; context: BrowserContext; problems: string[]; requested: string[] }> {
  const context = await browser.newContext({ viewport: { width: 960, height: 720 } });
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  const requested: string[] = [];
  page.on('request', (req) => requested.push(`${req.method()} ${new URL(req.url()).pathname}`));
  page.setDefaultTimeout(WAIT);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
  page.on('request', (req) => {
    if (!req.url().startsWith(url) && !req.url().startsWith(url.replace('http:', 'ws:'))) problems.push(`external request: ${req.url()}`);
  });
  const res = await page.goto(url + path, { timeout: WAIT });
  assert.equal(res?.status(), 200, `GET ${path}`);
  return { page, context, problems, requested };
}

async function waitConnected(page: Page): Promise<void> {
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'connected', undefined, { timeout: WAIT });
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true, animations: 'disabled' });
}

/** Records every value #variable shows (from the DOM mutations, so none is missed) in window.__seen. */
async function recordVariable(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __seen: string[] };
    w.__seen = [];
    const el = document.getElementById('variable')!;
    new MutationObserver((records) => {
      for (const r of records) for (const n of Array.from(r.addedNodes)) w.__seen.push(n.textContent ?? '');
    }).observe(el, { childList: true });
  });
}

function seen(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __seen: string[] }).__seen.slice());
}

async function waitSeen(page: Page, check: string, what: string): Promise<void> {
  // `check` is the body of a predicate over `seen` (the recorded values), evaluated in the page.
  await page
    .waitForFunction(`(() => { const seen = window.__seen; return ${check}; })()`, undefined, { timeout: WAIT, polling: 100 })
    .catch((err: Error) => {
      throw new Error(`timed out waiting for ${what}: ${err.message}`);
    });
}

async function publishViaHttp(url: string, data: unknown): Promise<void> {
  const res = await fetch(`${url}/api/publish`, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ channel: 'dashboard:variable', data }),
    signal: AbortSignal.timeout(WAIT),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { result?: unknown; error?: unknown };
  assert.equal(body.error, undefined, JSON.stringify(body));
}

test('index page loads and links both demos', async () => {
  const { page, context, problems } = await openPage('/');
  assert.equal(await page.title(), 'Herald demos');
  assert.equal(await page.getAttribute('#link-progress', 'href'), 'progress.html');
  assert.equal(await page.getAttribute('#link-dashboard', 'href'), 'dashboard.html');
  const curl = (await page.textContent('#curl')) ?? '';
  assert.match(curl, /X-API-Key: demo-api-key/);
  assert.ok(curl.includes(`${base}/api/publish`), curl);
  await screenshot(page, 'index.png');

  await page.click('#link-progress');
  await page.waitForURL(`${base}/progress.html`);
  assert.match(await page.title(), /progress/i);
  await page.goBack();
  await page.click('#link-dashboard');
  await page.waitForURL(`${base}/dashboard.html`);
  assert.match(await page.title(), /dashboard/i);
  assert.deepEqual(problems, []);
  await context.close();
});

test('progress page: Run shows the three seed messages then done, as ordered alerts', async () => {
  const { page, context, problems } = await openPage('/progress.html');
  await waitConnected(page);
  assert.equal(await page.locator('.alert').count(), 0);

  for (const run of [1, 2]) {
    await page.click('#run');
    assert.equal(await page.isDisabled('#run'), true, 'Run is disabled while the job runs');
    if (run === 1) {
      await page.waitForSelector('.alert[data-step="1"]', { timeout: WAIT });
      await screenshot(page, 'progress-running.png');
    }
    await page.waitForSelector('.alert.alert-done', { timeout: WAIT });
    const alerts = await page.$$eval('#messages .alert', (els) =>
      els.map((el) => ({ step: (el as HTMLElement).dataset.step, text: el.querySelector('p')?.textContent, done: el.classList.contains('alert-done') })),
    );
    assert.deepEqual(
      alerts,
      JOB_TEXTS.map((text, i) => ({ step: String(i + 1), text, done: i === JOB_TEXTS.length - 1 })),
      `run ${run}`,
    );
    await page.waitForFunction(() => !(document.getElementById('run') as HTMLButtonElement).disabled, undefined, { timeout: WAIT });
  }
  await screenshot(page, 'progress.png');
  assert.deepEqual(problems, []);
  await context.close();
});

test('dashboard page: the value changes live and shows a value published through the HTTP API', async () => {
  const { page, context, problems } = await openPage('/dashboard.html');
  await waitConnected(page);
  await recordVariable(page);
  await waitSeen(page, 'new Set(seen).size >= 3', 'the value to change twice');
  const values = await seen(page);
  assert.ok(values.every((v) => /^\d+$/.test(v)), values.join(' '));
  assert.ok(Number(await page.textContent('#updates')) >= 3);
  assert.notEqual(await page.textContent('#updated'), 'never');

  await publishViaHttp(base, { variable: 424242, at: new Date().toISOString() });
  await waitSeen(page, "seen.includes('424242')", 'the published value 424242');
  await screenshot(page, 'dashboard.png');
  assert.deepEqual(problems, []);
  await context.close();
});

test('dashboard page: two pages open at once get the same updates', async () => {
  const a = await openPage('/dashboard.html');
  const b = await openPage('/dashboard.html');
  await Promise.all([waitConnected(a.page), waitConnected(b.page)]);
  // Both show values before recording starts, so both are subscribed.
  await Promise.all([a.page, b.page].map((p) => p.waitForFunction(() => document.getElementById('variable')?.textContent !== '–', undefined, { timeout: WAIT })));
  await Promise.all([recordVariable(a.page), recordVariable(b.page)]);

  // A marker both pages must show, then the demo's next updates after it, the same on both.
  await publishViaHttp(base, { variable: 777001, at: new Date().toISOString() });
  const after3 = "seen.indexOf('777001') >= 0 && seen.length - seen.indexOf('777001') > 3";
  await Promise.all([waitSeen(a.page, after3, 'page A: marker and 3 updates'), waitSeen(b.page, after3, 'page B: marker and 3 updates')]);
  const [sa, sb] = await Promise.all([seen(a.page), seen(b.page)]);
  const tail = (s: string[]) => s.slice(s.indexOf('777001'), s.indexOf('777001') + 4);
  assert.deepEqual(tail(sa), tail(sb));
  await Promise.all([screenshot(a.page, 'dashboard-a.png'), screenshot(b.page, 'dashboard-b.png')]);
  assert.deepEqual([...a.problems, ...b.problems], []);
  await Promise.all([a.context.close(), b.context.close()]);
});

test("dashboard page: 'pages open' counts the pages subscribed, on every page, and goes down when one closes", async () => {
  // Its own node, so no other test's pages count.
  const { url } = await startDemoHerald({ job_step_delay: '200ms', dashboard_max_interval: '24h' });
  const count = (page: Page, n: number) =>
    page.waitForFunction((want) => document.getElementById('watching')?.textContent === String(want), n, { timeout: WAIT });
  const a = await openPage('/dashboard.html', url);
  await count(a.page, 1);
  const b = await openPage('/dashboard.html', url);
  await Promise.all([count(a.page, 2), count(b.page, 2)]);
  const c = await openPage('/dashboard.html', url);
  await Promise.all([count(a.page, 3), count(b.page, 3), count(c.page, 3)]);
  await c.context.close();
  await Promise.all([count(a.page, 2), count(b.page, 2)]);
  await b.context.close();
  await count(a.page, 1);
  assert.deepEqual([...a.problems, ...b.problems, ...c.problems], []);
  await a.context.close();
});

test('dashboard page: a page opened later shows the latest value at once (cache recovery)', async () => {
  // A node whose dashboard ticker practically never fires: the only value is the one published here.
  const { url } = await startDemoHerald({ job_step_delay: '200ms', dashboard_max_interval: '24h' });
  await publishViaHttp(url, { variable: 31337, at: '2024-01-02T03:04:05.000Z' });
  const { page, context, problems } = await openPage('/dashboard.html', url);
  await waitConnected(page);
  await page.waitForFunction(() => document.getElementById('variable')?.textContent === '31337', undefined, { timeout: WAIT });
  assert.equal(await page.textContent('#updates'), '1');
  assert.equal(await page.getAttribute('#updated', 'title'), '2024-01-02T03:04:05.000Z');
  await screenshot(page, 'dashboard-cache.png');
  assert.deepEqual(problems, []);
  await context.close();
});

// A browser where no WebSocket can connect (a proxy that refuses upgrades, here no WebSocket at all):
// the pages fall back to HTTP streaming, and without streamed fetch bodies to SSE.
for (const [transport, init] of [
  ['http_stream', 'window.WebSocket = undefined;'],
  ['sse', 'window.WebSocket = undefined; window.ReadableStream = undefined;'],
] as const) {
  test(`dashboard page without WebSocket: over ${transport}, live values and a value published through the API`, async () => {
    const { page, context, problems, requested } = await openPage('/dashboard.html', base, init);
    await waitConnected(page);
    await recordVariable(page);
    await waitSeen(page, 'new Set(seen).size >= 2', 'the value to change');
    await publishViaHttp(base, { variable: 515151, at: new Date().toISOString() });
    await waitSeen(page, "seen.includes('515151')", 'the published value 515151');
    // The page's own count of open pages comes from presence, asked for by /emulation.
    await page.waitForFunction(() => /^\d+$/.test(document.getElementById('watching')?.textContent ?? ''), undefined, { timeout: WAIT });
    const stream = transport === 'sse' ? 'GET /connection/sse' : 'POST /connection/http_stream';
    assert.ok(requested.includes(stream), requested.join(', '));
    assert.ok(requested.includes('POST /emulation'), requested.join(', '));
    assert.ok(!requested.some((r) => r.includes('/connection/websocket')), requested.join(', '));
    if (transport === 'sse') assert.ok(!requested.includes('POST /connection/http_stream'), requested.join(', '));
    await screenshot(page, `dashboard-${transport}.png`);
    assert.deepEqual(problems, []);
    await context.close();
  });
}
