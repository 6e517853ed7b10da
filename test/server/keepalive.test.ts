// Webdis and ws4redis sockets are pinged (WebSocket ping frames, webdis.ping_interval and
// ws4redis.ping_interval): a client that answers stays, however quiet; one that does not answer a ping
// by the next is ended, so a vanished peer does not hold its place for ever.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { launchChromium } from '../helpers/browser.js';
import { startNode, until, type TestNode } from '../helpers/herald.js';
import { sleep } from '../helpers/raw.js';
import { RedisProcess } from '../helpers/redis.js';
import { OPEN_LOCAL, startWebdis } from '../webdis/helpers.js';

/** A socket that records the pings it gets and how it closed; `autoPong: false` leaves pings unanswered. */
function watched(url: string, autoPong = true) {
  const ws = new WebSocket(url, { autoPong });
  const seen = { pings: 0, closed: undefined as number | undefined };
  ws.on('ping', () => seen.pings++);
  ws.on('close', (code: number) => (seen.closed = code));
  ws.on('error', () => undefined);
  return new Promise<{ ws: WebSocket; seen: typeof seen }>((resolve, reject) => {
    ws.once('open', () => resolve({ ws, seen }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
}

async function checkKeepAlive(urls: { live: string; mute: string }): Promise<void> {
  const live = await watched(urls.live);
  const mute = await watched(urls.mute, false);
  // 200 ms between pings: the mute one is ended at the second tick at the latest; bounded wait.
  for (let i = 0; i < 60 && mute.seen.closed === undefined; i++) await sleep(25);
  assert.equal(mute.seen.closed, 1006, 'a socket that never answers is ended');
  assert.ok(mute.seen.pings >= 1);
  await sleep(700);
  assert.equal(live.seen.closed, undefined, 'a quiet socket that answers stays');
  assert.ok(live.seen.pings >= 3, `pinged every interval (${live.seen.pings})`);
  live.ws.close();
}

test('webdis.ping_interval: Webdis sockets (with a format or without) are pinged; one that does not answer is ended', async () => {
  const node = await startWebdis({ webdis: { ping_interval: '200ms' } });
  try {
    await checkKeepAlive({ live: `${node.wsBase}/.json`, mute: `${node.wsBase}/.json` });
    await checkKeepAlive({ live: `${node.wsBase}/.raw`, mute: `${node.wsBase}/.None` });
  } finally {
    await node.close();
  }
});

test('ws4redis.ping_interval: ws4redis sockets are pinged; one that does not answer is ended', async () => {
  const node: TestNode = await startNode({ ws4redis: { enabled: true, ping_interval: '200ms' } });
  try {
    const url = `ws://127.0.0.1:${node.port}/ws/news?subscribe-broadcast`;
    await checkKeepAlive({ live: url, mute: url });
  } finally {
    await node.close();
  }
});

test('a socket the dialect stopped reading (its commands wait on a stopped Redis) is not taken for dead; its replies come when Redis answers', async () => {
  const redis = await RedisProcess.start();
  const node = await startWebdis({ engine: { type: 'redis', redis: { url: redis.url } }, webdis: { acl: OPEN_LOCAL, ping_interval: '200ms' } });
  try {
    const { ws, seen } = await watched(`${node.wsBase}/.json`);
    const replies: string[] = [];
    ws.on('message', (data: Buffer) => replies.push(data.toString('utf8')));
    redis.pause();
    // 300 commands: reading stops at 256 waiting, so the pongs to the pings sent meanwhile stay unread.
    for (let i = 0; i < 300; i++) ws.send(JSON.stringify(['GET', `paused:${i}`]));
    await sleep(1500); // seven intervals: twice over what ends a socket that gives no sign of life
    assert.equal(seen.closed, undefined, 'a paused socket is left alone');
    redis.resume();
    await until(() => replies.length === 300, 8000, 'the 300 replies');
    assert.deepEqual(JSON.parse(replies[299]!), { GET: null });
    assert.equal(seen.closed, undefined);
    ws.close();
  } finally {
    redis.resume();
    await node.close();
    await redis.stop();
  }
});

test('pings are spread over the interval, not sent to every socket at once; within an interval each socket gets one', async () => {
  const node = await startWebdis({ webdis: { ping_interval: '2s' } });
  const sockets: Array<Awaited<ReturnType<typeof watched>>> = [];
  try {
    const firstPing: number[] = [];
    for (let i = 0; i < 40; i++) {
      const s = await watched(`${node.wsBase}/.json`);
      s.ws.once('ping', () => firstPing.push(Date.now()));
      sockets.push(s);
    }
    for (let i = 0; i < 100 && firstPing.length < 40; i++) await sleep(50);
    assert.equal(firstPing.length, 40, 'each pinged within the interval');
    const spread = Math.max(...firstPing) - Math.min(...firstPing);
    assert.ok(spread >= 1000, `the first pings spread over the interval, not sent at once (${spread} ms between the first and the last)`);
    // 1.5 intervals on, each has had its second visit: pinged again (once an interval), and kept.
    await sleep(3000);
    const counts = sockets.map((s) => s.seen.pings);
    assert.ok(counts.every((n) => n >= 2 && n <= 3), `two or three pings each after 2.5 intervals at most (${counts.join(' ')})`);
    assert.ok(sockets.every((s) => s.seen.closed === undefined), 'every socket answered and stays');
  } finally {
    for (const s of sockets) s.ws.terminate();
    await node.close();
  }
});

test('a page in Chromium answers the pings by itself: its quiet Webdis socket stays over many intervals and still gets messages', async () => {
  const node = await startWebdis({ webdis: { ping_interval: '150ms' } });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    // A page of the loopback origin (Chromium blocks about:blank from reaching 127.0.0.1).
    await page.goto(`${node.httpBase}/PING`);
    await page.evaluate((url) => {
      const w = window as unknown as { got: string[]; ws: WebSocket };
      w.got = [];
      w.ws = new WebSocket(url);
      w.ws.onopen = () => w.ws.send(JSON.stringify(['SUBSCRIBE', 'quiet']));
      w.ws.onmessage = (e) => w.got.push(String(e.data));
    }, `${node.wsBase}/.json`);
    await page.waitForFunction(() => (window as unknown as { got: string[] }).got.length === 1, undefined, { timeout: 10_000 });
    await sleep(1500); // ten intervals with nothing sent by the page
    await fetch(`${node.httpBase}/PUBLISH/quiet/still-here`);
    await page.waitForFunction(() => (window as unknown as { got: string[] }).got.length === 2, undefined, { timeout: 10_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { ws: WebSocket }).ws.readyState), 1);
    assert.deepEqual(await page.evaluate(() => (window as unknown as { got: string[] }).got), ['{"SUBSCRIBE":["subscribe","quiet",1]}', '{"SUBSCRIBE":["message","quiet","still-here"]}']);
  } finally {
    await browser.close();
    await node.close();
  }
});

test('a socket that does not answer pings but sends messages is alive: it stays', async () => {
  const node = await startNode({ ws4redis: { enabled: true, ping_interval: '200ms', heartbeat: '--hb--' } });
  try {
    const talker = await watched(`ws://127.0.0.1:${node.port}/ws/news?subscribe-broadcast`, false);
    for (let i = 0; i < 12; i++) {
      talker.ws.send('--hb--');
      await sleep(100);
    }
    assert.ok(talker.seen.pings >= 3);
    assert.equal(talker.seen.closed, undefined);
    talker.ws.close();
  } finally {
    await node.close();
  }
});

test('webdis.ping_interval is off by default, as Webdis sends no pings: a socket that would not answer stays; an interval past 24 days is a config error', async () => {
  const node = await startWebdis();
  try {
    const mute = await watched(`${node.wsBase}/.json`, false);
    await sleep(300);
    assert.deepEqual(mute.seen, { pings: 0, closed: undefined });
    mute.ws.close();
  } finally {
    await node.close();
  }
  await assert.rejects(startNode({ ws4redis: { enabled: true, ping_interval: '30d' } }), /ws4redis\.ping_interval.*24 days/s);
});
