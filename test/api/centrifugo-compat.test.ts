// The server API answers as Centrifugo v6's does where a backend written for it would notice: the
// order of its HTTP checks, the legacy `POST /api` command stream, publish versions, and the fields
// and codes of the calls that act on connections.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { API_KEY, client, once, sign, startNode, until, type TestNode } from '../helpers/herald.js';

async function post(node: TestNode, path: string, body: string | object, headers: Record<string, string> = { 'X-API-Key': API_KEY }) {
  const res = await fetch(node.url + path, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text, type: res.headers.get('content-type') ?? '' };
}

const json = async (node: TestNode, method: string, params: object) => JSON.parse((await post(node, `/api/${method}`, params)).text);

let node: TestNode;
before(async () => {
  node = await startNode({ channel: { namespaces: [{ name: 'hist', history_size: 10, history_ttl: '60s' }, { name: 'room' }] } });
});
after(() => node.close());

describe('HTTP checks', () => {
  test('the method is checked before the key: GET without a key is 405', async () => {
    const res = await fetch(`${node.url}/api/publish`);
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
  });

  test('a wrong X-API-Key is not saved by a right Authorization header (X-API-Key wins when given)', async () => {
    assert.equal((await post(node, '/api/info', {}, { 'X-API-Key': 'wrong', Authorization: `apikey ${API_KEY}` })).status, 401);
    assert.equal((await post(node, '/api/info', {}, { 'X-API-Key': '', Authorization: `apikey ${API_KEY}` })).status, 200);
    // The query parameter is still read after a wrong header.
    assert.equal((await post(node, `/api/info?api_key=${API_KEY}`, {}, { 'X-API-Key': 'wrong' })).status, 200);
  });

  test("a call a browser marks as made by another site's page is refused (403), key or not", async () => {
    const r = await post(node, `/api/publish?api_key=${API_KEY}`, { channel: 'hist:x', data: 1 }, { 'Sec-Fetch-Site': 'cross-site', 'Content-Type': 'text/plain' });
    assert.equal(r.status, 403);
    assert.match(r.text, /other sites/);
    assert.equal((await post(node, '/api/info', {}, { 'X-API-Key': API_KEY, 'Sec-Fetch-Site': 'same-origin' })).status, 200);
  });

  test('an empty body is 400 (`{}` is the empty request)', async () => {
    for (const method of ['info', 'publish']) {
      const r = await post(node, `/api/${method}`, '');
      assert.equal(r.status, 400);
      assert.match(r.text, /empty request body/);
    }
    assert.equal((await post(node, '/api/info', '{}')).status, 200);
  });
});

describe('legacy POST /api', () => {
  test('the id is echoed, names are read in any case and numbers as Centrifugo numbers them', async () => {
    const r = await post(node, '/api', { id: 7, method: 'PUBLISH', params: { channel: 'hist:legacy', data: 1 } });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { id: 7, result: { offset: 1, epoch: JSON.parse(r.text).result.epoch } });
    // 6 is history; no id: none in the reply.
    const h = JSON.parse((await post(node, '/api', { method: 6, params: { channel: 'hist:legacy', limit: -1 } })).text);
    assert.equal(h.id, undefined);
    assert.deepEqual(h.result.publications.map((p: { data: unknown }) => p.data), [1]);
  });

  test('several commands, one after another, are run in order and answered a line each', async () => {
    const body = [
      { id: 1, method: 'publish', params: { channel: 'hist:lines', data: 'a' } },
      { id: 2, method: 'publish', params: { channel: 'nope:x', data: 'b' } },
      { id: 3, method: 'publish', params: { channel: 'hist:lines', data: 'c' } },
      { id: 4, method: 'device_register', params: {} },
      { id: 5, method: 'presence' },
    ]
      .map((c) => JSON.stringify(c))
      .join('\n');
    const r = await post(node, '/api', body);
    assert.equal(r.status, 200);
    const replies = r.text.split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(
      replies.map((x) => [x.id, x.result?.offset ?? x.error?.code]),
      [
        [1, 1],
        [2, 102],
        [3, 2],
        [4, 104],
        [5, 107],
      ],
    );
  });

  test('thousands of commands in one body are answered in order; a command without params is an empty request', async () => {
    const body = [JSON.stringify({ id: 1, method: 'publish', params: { channel: 'hist:many', data: 1 } }), ...Array.from({ length: 10_000 }, () => '{"method":99}'), '{"id":2,"method":"info"}'].join('\n');
    const r = await post(node, '/api', body);
    assert.equal(r.status, 200);
    const replies = r.text.split('\n').map((line) => JSON.parse(line));
    assert.equal(replies.length, 10_002);
    assert.equal(replies[0].result.offset, 1);
    assert.equal(replies[5000].error.code, 104);
    assert.equal(replies[10_001].id, 2);
    assert.ok(Array.isArray(replies[10_001].result.nodes), 'info without params answers');
  });

  test('an unknown method name, or a body that is not JSON, is 400 for the whole request', async () => {
    assert.equal((await post(node, '/api', { method: 'nosuch', params: {} })).status, 400);
    assert.equal((await post(node, '/api', { method: 'batch', params: { commands: [] } })).status, 400);
    assert.equal((await post(node, '/api', '{"method":"info"} {"method":')).status, 400);
    // A number Centrifugo does not know is an error in its reply.
    assert.equal(JSON.parse((await post(node, '/api', { method: 99, params: {} })).text).error.code, 104);
  });
});

describe('methods', () => {
  test('publish version: an older or equal version is dropped and answered with the top; version_epoch starts anew', async () => {
    const c = client(node, { token: await sign({ sub: 'v', channels: ['hist:ver'] }) });
    const got: unknown[] = [];
    c.on('publication', (ctx) => got.push(ctx.data));
    c.connect();
    await once(c, 'subscribed');
    const pub = (data: number, version: unknown, version_epoch?: string) => json(node, 'publish', { channel: 'hist:ver', data, version, version_epoch });
    const first = await pub(5, 5);
    assert.equal(first.result.offset, 1);
    assert.deepEqual((await pub(3, 3)).result, first.result);
    assert.deepEqual((await pub(5, 5)).result, first.result);
    assert.equal((await pub(6, 6)).result.offset, 2);
    assert.equal((await pub(1, 1, 'e2')).result.offset, 3);
    assert.equal((await pub(0, 'x')).error.code, 107);
    assert.equal((await pub(0, -1)).error.code, 107);
    await until(() => got.length === 3, 5000, 'the versions that passed');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, [5, 6, 1]);
    const history = await json(node, 'history', { channel: 'hist:ver', limit: -1 });
    assert.deepEqual(history.result.publications.map((p: { data: unknown }) => p.data), [5, 6, 1]);
    c.disconnect();
  });

  test('boolean fields of another type are 107, not read as false', async () => {
    assert.equal((await json(node, 'publish', { channel: 'hist:b', data: 1, skip_history: 'yes' })).error.code, 107);
    assert.equal((await json(node, 'publish', { channel: 'hist:b', data: 1, delta: 1 })).error.code, 107);
  });

  test('unsubscribe: 102 for a channel of no namespace, {} without a channel', async () => {
    assert.equal((await json(node, 'unsubscribe', { user: 'bob', channel: 'zz:1' })).error.code, 102);
    assert.deepEqual(await json(node, 'unsubscribe', { user: 'bob' }), { result: {} });
  });

  test('disconnect: any code a close frame can carry; others 107', async () => {
    const c = client(node, { token: await sign({ sub: 'closer' }) });
    c.connect();
    await once(c, 'connected');
    const gone = once<{ code: number }>(c, 'disconnected');
    assert.deepEqual(await json(node, 'disconnect', { user: 'closer', disconnect: { code: 4523, reason: 'bye' } }), { result: {} });
    assert.equal((await gone).code, 4523);
    for (const code of [0, 1005, 2000, 5000, 1.5]) assert.equal((await json(node, 'disconnect', { user: 'closer', disconnect: { code, reason: '' } })).error.code, 107, `code ${code}`);
    assert.deepEqual(await json(node, 'disconnect', { user: 'closer', disconnect: { code: 1000, reason: '' } }), { result: {} });
  });

  test('client and session must be strings', async () => {
    assert.equal((await json(node, 'disconnect', { user: 'x', session: 5 })).error.code, 107);
    assert.equal((await json(node, 'refresh', { user: 'x', client: {} })).error.code, 107);
  });

  test("channels: Centrifugo's glob, matched without backtracking (a pattern of many stars answers at once)", async () => {
    const c = client(node, { token: await sign({ sub: 'g', channels: [`room:${'a'.repeat(40)}`] }) });
    c.connect();
    await once(c, 'subscribed');
    const started = Date.now();
    const r = await json(node, 'channels', { pattern: '*a'.repeat(14) + '*b' });
    assert.deepEqual(r.result.channels, {});
    assert.ok(Date.now() - started < 500, `${Date.now() - started} ms`);
    assert.deepEqual(Object.keys((await json(node, 'channels', { pattern: 'room:{x,a*}' })).result.channels), [`room:${'a'.repeat(40)}`]);
    assert.deepEqual((await json(node, 'channels', { pattern: 'room:[!a]*' })).result.channels, {});
    assert.equal((await json(node, 'channels', { pattern: '{a,b}'.repeat(9) })).error.code, 107);
    c.disconnect();
  });

  test('batch without commands is {}; rpc with no handler is 104, without a method 107', async () => {
    assert.deepEqual(JSON.parse((await post(node, '/api/batch', { commands: [] })).text), {});
    assert.deepEqual(JSON.parse((await post(node, '/api/batch', {})).text), {});
    assert.equal((await json(node, 'rpc', { method: 'x' })).error.code, 104);
    assert.equal((await json(node, 'rpc', {})).error.code, 107);
  });
});
