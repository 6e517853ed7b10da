// publication_data_format (Centrifugo's): a namespace may require its publications' payloads to be
// JSON, or a JSON object; a publish with another payload (API `data`/`b64data`, a client's `data`)
// is refused with 107 instead of reaching subscribers (a JSON client given a payload that is not
// JSON is closed with 3506). A publish proxy answering such data is a failing backend (100).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { HeraldApiError, loadConfig } from '../../src/index.js';
import { startBackend, type Backend, type BackendRequest } from '../helpers/backend.js';
import { openNamespace, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';

let node: TestNode;
let backend: Backend;
let proxyData: unknown = { ok: true };
const b64 = (text: string) => Buffer.from(text).toString('base64');
const publishes = { allow_publish_for_client: true };
before(async () => {
  const seen: BackendRequest[] = [];
  backend = await startBackend(() => ({ result: { data: proxyData } }), seen);
  node = await startNode({
    channel: {
      publication_data_format: 'json',
      proxy: { publish: { endpoint: `${backend.url}/publish` } },
      namespaces: [
        openNamespace('inherits', publishes),
        openNamespace('obj', { ...publishes, publication_data_format: 'json_object' }),
        openNamespace('proxied', { publish_proxy_enabled: true, publication_data_format: 'json_object' }),
      ],
    },
  });
});
after(async () => {
  await node.close();
  backend.close();
});

const refused = (code: number) => (e: unknown) => e instanceof HeraldApiError && e.apiCode === code;

test('API: a payload that is not JSON (b64data) is refused with 107 where the channel section asks for json; JSON passes', async () => {
  await assert.rejects(node.api.call('publish', { channel: 'inherits:a', b64data: b64('not json') }), refused(107));
  assert.ok(await node.api.call('publish', { channel: 'inherits:a', b64data: b64('{"a":1}') }));
  assert.ok(await node.api.publish('inherits:a', [1, 2]));
});

test('API: json_object refuses arrays, numbers and strings; broadcast answers per channel', async () => {
  await assert.rejects(node.api.publish('obj:a', [1, 2]), refused(107));
  await assert.rejects(node.api.publish('obj:a', 'text'), refused(107));
  assert.ok(await node.api.publish('obj:a', { a: 1 }));
  const { responses } = await node.api.broadcast(['obj:a', 'inherits:a'], 5);
  assert.equal((responses[0] as { error?: { code: number } }).error?.code, 107);
  assert.deepEqual(responses[1], { result: {} });
});

test('a client: its publish of a non-object to a json_object namespace gets 107, and nothing reaches the subscribers', async () => {
  const c = await RawClient.open(node.wsUrl);
  await c.connect({ token: await userToken('p1') });
  assert.equal((await c.call('subscribe', { channel: 'obj:b' })).error, undefined);
  assert.equal((await c.call('publish', { channel: 'obj:b', data: [1] })).error?.code, 107);
  assert.equal((await c.call('publish', { channel: 'obj:b', data: { n: 2 } })).error, undefined);
  await until(() => c.pushes('obj:b').length === 1);
  assert.deepEqual(
    c.pushes('obj:b').map((p) => p.data),
    [{ n: 2 }],
  );
  assert.equal(c.closeInfo, undefined);
  c.close();
});

test('the publish proxy answering data the format refuses is a failing backend (100)', async () => {
  const c = await RawClient.open(node.wsUrl);
  await c.connect({ token: await userToken('p2') });
  proxyData = [1, 2];
  assert.equal((await c.call('publish', { channel: 'proxied:a', data: { n: 1 } })).error?.code, 100);
  proxyData = { replaced: true };
  assert.equal((await c.call('publish', { channel: 'proxied:a', data: { n: 1 } })).error, undefined);
  // The client's own data is checked before the backend is asked.
  assert.equal((await c.call('publish', { channel: 'proxied:a', data: 3 })).error?.code, 107);
  c.close();
});

test("publication_data_format: only '', json and json_object (Herald's clients read JSON)", () => {
  assert.throws(
    () => loadConfig({ values: { channel: { namespaces: [{ name: 'a', publication_data_format: 'binary' }] } } as never }),
    /channel\.namespaces\.0\.publication_data_format/,
  );
});
