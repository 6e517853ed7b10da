// Connections of every dialect count in `info` and the metrics; the API's `channels` lists native
// channels only (the Webdis and ws4redis dialects' Redis channels are not Herald channels).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { client, startNode } from '../helpers/herald.js';

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

test('native, Webdis (WebSockets and comet streams) and ws4redis connections are all counted; channels lists native channels only', async () => {
  const node = await startNode({
    metrics: { enabled: true },
    client: { allow_anonymous_connect_without_token: true },
    channel: { without_namespace: { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true } },
    webdis: { enabled: true, port: 0 },
    ws4redis: { enabled: true },
  });
  const sockets: WebSocket[] = [];
  const c = client(node);
  try {
    const sub = c.newSubscription('native-news');
    sub.subscribe();
    c.connect();
    await sub.ready(5000);
    const webdis = await open(`ws://127.0.0.1:${node.herald.webdisPort}/.json`);
    sockets.push(webdis);
    const subscribed = new Promise((r) => webdis.once('message', r));
    webdis.send(JSON.stringify(['SUBSCRIBE', 'webdis-chan']));
    await subscribed;
    sockets.push(await open(`ws://127.0.0.1:${node.port}/ws/foo?subscribe-broadcast`));
    // A Webdis comet stream and a Webdis socket on a path without a format are connections too (as
    // webdis.connection_limit counts them).
    const comet = await fetch(`http://127.0.0.1:${node.herald.webdisPort}/SUBSCRIBE/comet-chan`);
    const reader = comet.body!.getReader();
    await reader.read(); // the subscribe confirmation
    sockets.push(await open(`ws://127.0.0.1:${node.herald.webdisPort}/.None`));
    const info = (await node.api.info()).nodes[0] as { num_clients: number };
    assert.equal(info.num_clients, 5);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    assert.match(metrics, /^herald_connections 5$/m);
    await reader.cancel();
    const { channels } = await node.api.channels();
    assert.deepEqual(Object.keys(channels), ['native-news']);
  } finally {
    for (const s of sockets) s.terminate();
    c.disconnect();
    await node.close();
  }
});
