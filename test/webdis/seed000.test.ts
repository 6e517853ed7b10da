// Seed 000 end to end, as written: its page (served by its Flask app as layout.html) opens
// `new WebSocket("ws://HOST:7379/.json")` to Herald's Webdis listener in Debian's Chromium, and its
// Flask app's POST /test_msg publishes three messages with redis-py to the Redis Herald uses. The
// page must show exactly those three, in order, as alerts. The page script and the handler are the
// seed's, unchanged except the host and port, the Redis address and the length of the sleeps.
// jQuery is not available offline: a shim provides the two calls the page makes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { freePort, RedisProcess } from '../helpers/redis.js';
import { http, sleep, startWebdis, type WebdisNode } from './helpers.js';

// This file runs from dist/test/webdis/.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts');
const WAIT = 10_000;

const MESSAGES = ['You have started a server side function', 'Function running, please wait......', 'Function still running, almost done.......'];

/** The seed's page script, unchanged except `192.168.199.85:7379`. */
const pageScript = (hostPort: string) => `<script type="text/javascript">

    var socket = new WebSocket("ws://${hostPort}/.json");

    var theplace = $("#results")

    var ident = 666

    socket.onopen = function() {
        // subscribe to channel using identifier
        socket.send(JSON.stringify(["SUBSCRIBE", ident]));
    };
    socket.onmessage = function(evt){
        // Extract data string from MessageEvent array and convert to JSON
        var data = JSON.parse(evt.data)
        console.log(evt)

        // Extract the actual message text from the JSON
        var message = data.SUBSCRIBE[2]

        // The server side sends a message of "1" to signal successful connection
        // We do not want this to trigger a message on the client, 
        // so we catch it with an if statement and just print to console
        if (message == 1){
            console.log("Websocket connected.")
        }
        // Any other messages must be rendered to the client
        else{
            theplace.append("<div class=\\"alert alert-info\\" role=\\"alert\\"><p>" + message + "</p></div>");
            $(".alert").show()
        }
    };
</script>`;

/** layout.html: the results area, a jQuery shim for `$(sel).append(html)` and `$(sel).show()`, the seed's script. */
const layout = (hostPort: string) => `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>Seed 000 on Herald</title>
<style>
  body { font-family: sans-serif; margin: 2em; }
  .alert { display: none; padding: .75em 1.25em; margin-bottom: 1em; border: 1px solid #bee5eb; border-radius: .25em; }
  .alert-info { color: #0c5460; background: #d1ecf1; }
  .alert p { margin: 0; }
</style>
<script>
  function $(selector) {
    var nodes = Array.prototype.slice.call(document.querySelectorAll(selector));
    return {
      append: function (html) { nodes.forEach(function (n) { n.insertAdjacentHTML('beforeend', html); }); return this; },
      show: function () { nodes.forEach(function (n) { n.style.display = 'block'; }); return this; }
    };
  }
</script>
</head>
<body>
<h1>Server-side function</h1>
<form method="post" action="/test_msg"><button type="submit">Run</button></form>
<div id="results"></div>
${pageScript(hostPort)}
</body>
</html>
`;

/** The seed's Flask app: its /test_msg handler as written, Redis address and sleeps from the environment. */
const FLASK_APP = `import os
from flask import Flask, render_template, request
import time
import redis

REDIS_HOST = os.environ['SEED_REDIS_HOST']
REDIS_PORT = int(os.environ['SEED_REDIS_PORT'])
SLEEP = float(os.environ.get('SEED_SLEEP', '2'))

app = Flask(__name__)

@app.route("/test_msg", methods=['GET', 'POST'])
def test_msg():
    if request.method == 'POST':
        # connect to redis server
        r = redis.client.StrictRedis(host=REDIS_HOST, port=REDIS_PORT, db=0, password=None)
        time.sleep(SLEEP)

        # publish message to redis using group name passed in via ident argument
        r.publish(666, 'You have started a server side function')

        time.sleep(SLEEP)

        # publish message to redis using group name passed in via ident argument
        r.publish(666, 'Function running, please wait......')

        time.sleep(SLEEP)

        # publish message to redis using group name passed in via ident argument
        r.publish(666, 'Function still running, almost done.......')

        time.sleep(SLEEP)
        return render_template("func_finish.html")

    elif request.method == 'GET':
        return render_template("layout.html")

if __name__ == "__main__":
    app.run(host='127.0.0.1', port=int(os.environ['SEED_FLASK_PORT']))
`;

let redis: RedisProcess;
let node: WebdisNode;
let flask: ChildProcess | undefined;
let flaskPort: number;
let flaskLog = '';
let browser: Browser;
let dir: string;

before(async () => {
  redis = await RedisProcess.start();
  node = await startWebdis({ engine: { type: 'redis', redis: { url: redis.url } } });
  dir = mkdtempSync(join(tmpdir(), 'herald-seed000-'));
  mkdirSync(join(dir, 'templates'));
  writeFileSync(join(dir, 'app.py'), FLASK_APP);
  writeFileSync(join(dir, 'templates', 'layout.html'), layout(`127.0.0.1:${node.webdisPort}`));
  writeFileSync(join(dir, 'templates', 'func_finish.html'), '<!doctype html><p>Function finished</p>\n');
  flaskPort = await freePort();
  flask = spawn('/usr/bin/python3', ['app.py'], {
    cwd: dir,
    env: { ...process.env, SEED_REDIS_HOST: '127.0.0.1', SEED_REDIS_PORT: String(redis.port), SEED_SLEEP: '0.2', SEED_FLASK_PORT: String(flaskPort), PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  flask.stdout!.on('data', (d: Buffer) => (flaskLog += d.toString()));
  flask.stderr!.on('data', (d: Buffer) => (flaskLog += d.toString()));
  const end = Date.now() + WAIT;
  for (;;) {
    const up = await http(flaskPort, 'GET', '/test_msg', { ms: 1000 }).then((r) => r.status === 200, () => false);
    if (up) break;
    if (Date.now() > end || flask.exitCode !== null) throw new Error(`the Flask app did not start:\n${flaskLog}`);
    await sleep(100);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (flask && flask.exitCode === null) {
    const exited = new Promise((r) => flask!.once('exit', r));
    flask.kill('SIGTERM');
    await Promise.race([exited, sleep(3000)]);
  }
  await node?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('seed 000: the Flask app publishes three messages with redis-py; the page shows exactly those, in order', async () => {
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const problems: string[] = [];
  const logs: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    logs.push(msg.text());
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(`http://127.0.0.1:${flaskPort}/`) && !url.startsWith(`ws://127.0.0.1:${node.webdisPort}/`)) problems.push(`external request: ${url}`);
  });

  const res = await page.goto(`http://127.0.0.1:${flaskPort}/test_msg`, { timeout: WAIT });
  assert.equal(res?.status(), 200);
  // The subscribe confirmation's data.SUBSCRIBE[2] is 1: the page logs it instead of showing it.
  const end = Date.now() + WAIT;
  while (!logs.includes('Websocket connected.')) {
    assert.ok(Date.now() < end, `the page never logged "Websocket connected."; console: ${JSON.stringify(logs)}`);
    await sleep(20);
  }

  // What clicking Run does: POST /test_msg (the page stays while the function runs).
  const post = await http(flaskPort, 'POST', '/test_msg', { ms: WAIT });
  assert.equal(post.status, 200, flaskLog);
  assert.match(post.text, /Function finished/);

  await page.waitForFunction(() => document.querySelectorAll('.alert').length >= 3, undefined, { timeout: WAIT });
  await sleep(200);
  const alerts = await page.$$eval('.alert', (els) => els.map((e) => ({ text: (e as HTMLElement).innerText.trim(), visible: (e as HTMLElement).offsetParent !== null })));
  assert.deepEqual(
    alerts.map((a) => a.text),
    MESSAGES,
  );
  assert.ok(alerts.every((a) => a.visible), 'every alert is shown');
  await page.screenshot({ path: join(ARTIFACTS, 'webdis-seed000.png'), fullPage: true, animations: 'disabled' });
  assert.deepEqual(problems, []);
  await context.close();
});
