// Prometheus metrics: off by default; when on, they count connections, deliveries and API calls.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, startNode } from '../helpers/herald.js';

test('metrics are off by default (404)', async () => {
  const node = await startNode();
  try {
    assert.equal((await fetch(`${node.url}/metrics`)).status, 404);
  } finally {
    await node.close();
  }
});

test('metrics on: connections, subscriptions, deliveries and API calls', async () => {
  const node = await startNode({
    metrics: { enabled: true },
    client: { allow_anonymous_connect_without_token: true },
    channel: { without_namespace: { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true } },
  });
  const scrape = async () => {
    const res = await fetch(`${node.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    return res.text();
  };
  const value = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  const clients = [client(node), client(node)];
  try {
    for (const c of clients) {
      const s = c.newSubscription('m');
      s.subscribe();
      c.connect();
      await s.ready(5000);
    }
    await node.api.publish('m', { x: 1 });
    await node.api.publish('nope:x', 1).catch(() => undefined);
    const text = await scrape();
    assert.equal(value(text, 'herald_connections'), 2);
    assert.equal(value(text, 'herald_subscriptions'), 2);
    assert.equal(value(text, 'herald_hub_deliveries_total'), 2);
    assert.equal(value(text, 'herald_hub_publications_total'), 1);
    assert.match(text, /^# TYPE herald_hub_deliveries_total counter$/m);
    assert.match(text, /herald_api_calls_total\{method="publish",result="ok"\} 1/);
    assert.match(text, /herald_api_calls_total\{method="publish",result="102"\} 1/);
    assert.match(text, /herald_process_resident_memory_bytes/);
  } finally {
    for (const c of clients) c.disconnect();
    await node.close();
  }
});
