// RPC with Centrifugo v6's `rpc` section: a method's namespace (before `rpc.namespace_boundary`)
// picks its proxy (`rpc.proxy`, or one of `proxies` by name); a namespace without its proxy on is
// 108, one not configured 104; the ping extension answers Herald-side; and the config refuses what
// cannot work.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startBackend, type Backend, type BackendRequest } from '../helpers/backend.js';
import { client, startNode, withHeaders, type TestNode } from '../helpers/herald.js';

const seen: BackendRequest[] = [];
let backend: Backend;

before(async () => {
  backend = await startBackend((s) => ({ result: { data: { path: s.path, method: s.body.method, got: s.body.data } } }), seen);
});
after(() => backend.close());

const anonymous = { allow_anonymous_connect_without_token: true };

async function connected(node: TestNode, headers?: Record<string, string>) {
  const c = client(node, headers ? { websocket: withHeaders(headers) } : {});
  c.connect();
  await c.ready(3000);
  return c;
}

const failsWith = (code: number) => (e: { code: number }) => e.code === code;

test('rpc namespaces: each method goes to the proxy of its namespace; a namespace without its proxy on is 108, an unknown one 104; ping is answered without a backend', async () => {
  const node = await startNode({
    client: anonymous,
    proxies: [{ name: 'billing-backend', endpoint: `${backend.url}/billing` }],
    rpc: {
      proxy: { endpoint: `${backend.url}/rpc`, http_headers: ['X-Team'] },
      without_namespace: { proxy_enabled: true },
      namespaces: [{ name: 'billing', proxy_enabled: true, proxy_name: 'billing-backend' }, { name: 'reports', proxy_enabled: true }, { name: 'closed' }],
      ping: { enabled: true },
    },
  });
  try {
    const c = await connected(node, { 'X-Team': 'blue' });
    assert.deepEqual((await c.rpc('sum', { a: 1 })).data, { path: '/rpc', method: 'sum', got: { a: 1 } });
    assert.equal(seen.at(-1)!.headers['x-team'], 'blue', "rpc.proxy's http_headers are passed on");
    assert.deepEqual((await c.rpc('billing:charge', { cents: 5 })).data, { path: '/billing', method: 'billing:charge', got: { cents: 5 } }, 'the whole method is passed on');
    assert.deepEqual((await c.rpc('reports:daily:csv', {})).data, { path: '/rpc', method: 'reports:daily:csv', got: {} }, 'the namespace ends at the first boundary');
    assert.deepEqual((await c.rpc(':odd', {})).data, { path: '/rpc', method: ':odd', got: {} }, 'an empty namespace is no namespace, as in Centrifugo');
    const asked = seen.length;
    await assert.rejects(c.rpc('closed:x', {}), failsWith(108));
    await assert.rejects(c.rpc('unknown:x', {}), failsWith(104));
    assert.equal((await c.rpc('ping', {})).data, undefined);
    assert.equal(seen.length, asked, 'neither refusals nor ping reached a backend');
  } finally {
    await node.close();
  }
});

test('rpc defaults: no RPC proxy, so every method is 108 (104 beside the ping extension), as in Centrifugo; the boundary and ping method can be changed', async () => {
  const plain = await startNode({ client: anonymous });
  try {
    const c = await connected(plain);
    for (const method of ['sum', 'ns:sum', 'ping']) await assert.rejects(c.rpc(method, {}), failsWith(108), method);
  } finally {
    await plain.close();
  }
  const pingOnly = await startNode({ client: anonymous, rpc: { ping: { enabled: true } } });
  try {
    const c = await connected(pingOnly);
    assert.equal((await c.rpc('ping', {})).data, undefined);
    for (const method of ['sum', 'ns:sum']) await assert.rejects(c.rpc(method, {}), failsWith(104), method);
  } finally {
    await pingOnly.close();
  }
  const dotted = await startNode({
    client: anonymous,
    rpc: { proxy: { endpoint: `${backend.url}/rpc` }, namespaces: [{ name: 'ns', proxy_enabled: true }], namespace_boundary: '.', ping: { enabled: true, method: 'rtt' } },
  });
  try {
    const c = await connected(dotted);
    assert.deepEqual((await c.rpc('ns.sum', {})).data, { path: '/rpc', method: 'ns.sum', got: {} });
    await assert.rejects(c.rpc('ns:sum', {}), failsWith(108), 'no "." in it: a method without namespace, whose proxy is off');
    assert.equal((await c.rpc('rtt', {})).data, undefined);
    await assert.rejects(c.rpc('ping', {}), failsWith(108));
  } finally {
    await dotted.close();
  }
});

test('Herald\'s client.proxy.rpc still takes every method, namespaced or not, and is not mixed with rpc namespaces that enable proxies', async () => {
  const node = await startNode({ client: { ...anonymous, proxy: { rpc: { endpoint: `${backend.url}/all` } } } });
  try {
    const c = await connected(node);
    assert.deepEqual((await c.rpc('ns:sum', {})).data, { path: '/all', method: 'ns:sum', got: {} });
  } finally {
    await node.close();
  }
  await assert.rejects(
    startNode({ client: { proxy: { rpc: { endpoint: `${backend.url}/all` } } }, rpc: { proxy: { endpoint: `${backend.url}/rpc` }, without_namespace: { proxy_enabled: true } } }),
    /client\.proxy\.rpc\.endpoint.*rpc\.proxy/s,
  );
});

test('rpc config errors: a proxy enabled without its endpoint, an unknown proxy name, a duplicate namespace, a bad timeout', async () => {
  await assert.rejects(startNode({ rpc: { without_namespace: { proxy_enabled: true } } }), /rpc\.without_namespace\.proxy_enabled.*needs rpc\.proxy\.endpoint/s);
  await assert.rejects(startNode({ rpc: { namespaces: [{ name: 'ns', proxy_enabled: true, proxy_name: 'nope' }] } }), /rpc\.namespaces\.0\.proxy_name.*no proxy named "nope"/s);
  await assert.rejects(startNode({ rpc: { namespaces: [{ name: 'ns' }, { name: 'ns' }] } }), /rpc\.namespaces\.1\.name.*duplicate RPC namespace "ns"/s);
  await assert.rejects(startNode({ rpc: { proxy: { endpoint: 'http://x', timeout: 0 } } }), /rpc\.proxy\.timeout/);
  await assert.rejects(startNode({ rpc: { ping: { enabled: true, method: '' } } }), /rpc\.ping\.method/);
});
