// What a browser makes of a Webdis reply anyone can write: with the default ACL, `PING` echoes its
// argument and `PUBLISH` feeds comet streams, and a URL may ask for either as `.html`. Served on the
// main port under `path_prefix` (the application's origin), such a page must not run script there
// nor read its cookies (webdis.sandbox, on by default); with the sandbox off, it would.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { http, startWebdis, type WebdisNode } from './helpers.js';

let browser: Browser;
let sandboxed: WebdisNode;
let open: WebdisNode;

before(async () => {
  // The default ACL (pub/sub and PING), served on the main port under a prefix, with the memory engine.
  sandboxed = await startWebdis({ webdis: { listen: false, path_prefix: '/webdis' } });
  open = await startWebdis({ webdis: { listen: false, path_prefix: '/webdis', sandbox: false } });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await Promise.all([sandboxed?.close(), open?.close()]);
});

const PAYLOAD = `<script>document.title = 'ran:' + document.cookie</script>`;

/** Loads the page PING echoes as .html, with a cookie set for the origin first; returns its title. */
async function titleOf(node: WebdisNode): Promise<string> {
  const context = await browser.newContext();
  try {
    await context.addCookies([{ name: 'session', value: 'secret', url: `http://127.0.0.1:${node.port}` }]);
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${node.port}/webdis/PING/${encodeURIComponent(PAYLOAD)}.html`);
    await page.waitForLoadState('load');
    return await page.title();
  } finally {
    await context.close();
  }
}

test('a reply asked for as HTML runs no script and reads no cookie of the origin (webdis.sandbox)', async () => {
  const r = await http(sandboxed.port, 'GET', `/webdis/PING/${encodeURIComponent(PAYLOAD)}.html`);
  assert.equal(r.headers['content-type'], 'text/html');
  assert.equal(r.headers['content-security-policy'], 'sandbox');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.equal(await titleOf(sandboxed), '');
  // The same page with the sandbox off is what the sandbox stops (Webdis's own behaviour).
  assert.equal(await titleOf(open), 'ran:session=secret');
});

test('JSON replies are as before; a comet stream asked for as HTML is sandboxed too', async () => {
  const r = await http(sandboxed.port, 'GET', '/webdis/PING');
  assert.equal(r.text, '{"PING":[true,"PONG"]}');
  assert.equal(r.headers['content-security-policy'], undefined, 'JSON, which no browser runs as a page, is not sandboxed');
  const comet = await new Promise<Record<string, unknown>>((resolve, reject) => {
    import('node:http').then(({ request }) => {
      const req = request({ host: '127.0.0.1', port: sandboxed.port, path: '/webdis/SUBSCRIBE/room.html', agent: false }, (res) => {
        resolve(res.headers);
        res.destroy();
      });
      req.on('error', reject);
      req.end();
    }, reject);
  });
  assert.equal(comet['content-security-policy'], 'sandbox');
});
