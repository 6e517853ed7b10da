// The server HTTP API over real HTTP: auth, status codes, error modes and every method's answer.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { HeraldApi, HeraldApiError, HeraldError } from '../../src/index.js';
import { API_KEY, sign, startNode, type TestNode } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';

const NAMESPACES = [
  { name: 'hist', history_size: 5, history_ttl: '60s' },
  { name: 'plain' },
  { name: 'open', allow_subscribe_for_client: true },
];

async function post(node: TestNode, path: string, body: unknown, headers: Record<string, string> = { 'X-API-Key': API_KEY }) {
  const res = await fetch(node.url + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, type: res.headers.get('content-type') };
}

describe('server API auth', () => {
  let node: TestNode;
  let noKey: TestNode;
  let insecure: TestNode;
  before(async () => {
    node = await startNode({ channel: { namespaces: NAMESPACES } });
    noKey = await startNode({ http_api: { key: '' } });
    insecure = await startNode({ http_api: { key: '', insecure: true } });
  });
  after(async () => {
    await Promise.all([node.close(), noKey.close(), insecure.close()]);
  });

  test('missing or wrong key: 401 with an empty body', async () => {
    const variants: Record<string, string>[] = [{}, { 'X-API-Key': 'wrong' }, { Authorization: 'apikey wrong' }];
    for (const headers of variants) {
      const r = await post(node, '/api/info', {}, headers);
      assert.equal(r.status, 401);
      assert.equal(r.text, '');
    }
  });

  test('key accepted from X-API-Key, Authorization: apikey (any case) and ?api_key', async () => {
    assert.equal((await post(node, '/api/info', {}, { 'X-API-Key': API_KEY })).status, 200);
    assert.equal((await post(node, '/api/info', {}, { Authorization: `apikey ${API_KEY}` })).status, 200);
    assert.equal((await post(node, '/api/info', {}, { Authorization: `APIKEY ${API_KEY}` })).status, 200);
    assert.equal((await post(node, `/api/info?api_key=${API_KEY}`, {}, {})).status, 200);
    assert.equal((await post(node, `/api/info?x=1&api_key=${encodeURIComponent(API_KEY)}&y`, {}, {})).status, 200);
    assert.equal((await post(node, `/api/info?api_key=wrong`, {}, {})).status, 401);
    assert.equal((await post(node, `/api/info?api_key=`, {}, {})).status, 401);
    // X-API-Key when given, else Authorization; then the query parameter (Centrifugo's order).
    assert.equal((await post(node, `/api/info?api_key=${API_KEY}`, {}, { 'X-API-Key': 'wrong' })).status, 200);
    assert.equal((await post(node, '/api/info', {}, { 'X-API-Key': 'wrong', Authorization: `apikey ${API_KEY}` })).status, 401);
    assert.equal((await post(node, '/api/info', {}, { 'X-API-Key': API_KEY, Authorization: 'apikey wrong' })).status, 200);
    assert.equal((await post(node, '/api/info?api_key=wrong', {}, { 'X-API-Key': 'wrong', Authorization: 'apikey wrong' })).status, 401);
  });

  test('no key configured: every call is refused (nothing open by default)', async () => {
    assert.equal((await post(noKey, '/api/info', {}, { 'X-API-Key': '' })).status, 401);
    assert.equal((await post(noKey, '/api/info', {}, { 'X-API-Key': 'anything' })).status, 401);
  });

  test('insecure mode opens the API without a key', async () => {
    assert.equal((await post(insecure, '/api/info', {}, {})).status, 200);
  });
});

describe('server API methods', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ channel: { namespaces: NAMESPACES } });
  });
  after(() => node.close());

  test('GET is 405, invalid JSON is 400 plain text, unknown method is 404', async () => {
    const get = await fetch(`${node.url}/api/publish`, { headers: { 'X-API-Key': API_KEY } });
    assert.equal(get.status, 405);
    const bad = await post(node, '/api/publish', '{not json');
    assert.equal(bad.status, 400);
    assert.match(bad.type ?? '', /text\/plain/);
    assert.equal((await post(node, '/api/nope', {})).status, 404);
  });

  test('publish: result with offset and epoch for channels with history, empty without', async () => {
    const r = await post(node, '/api/publish', { channel: 'hist:a', data: { x: 1 } });
    assert.equal(r.status, 200);
    assert.match(r.type ?? '', /application\/json/);
    assert.equal(r.json.result.offset, 1);
    assert.equal(typeof r.json.result.epoch, 'string');
    const p = await post(node, '/api/publish', { channel: 'plain:a', data: 'text' });
    assert.deepEqual(p.json, { result: {} });
  });

  test("publish answers after the publication went out to the node's subscribers", async () => {
    // Subscribers come first: the reply is written after the deliveries the call queued, so on one
    // machine the subscriber's socket has the publication before the publisher has its answer.
    const raw = await RawClient.open(node.wsUrl);
    await raw.connect({ token: await sign({ sub: 'u1' }) });
    await raw.call('subscribe', { channel: 'open:order' });
    const order: string[] = [];
    raw.ws.on('message', () => order.push('delivery'));
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve, reject) => {
        const headers = { 'Content-Type': 'application/json', 'X-API-Key': API_KEY };
        const req = request(`${node.url}/api/publish`, { method: 'POST', headers }, (res) => {
          order.push(`reply ${res.statusCode}`);
          res.resume().on('end', resolve);
        });
        req.on('error', reject);
        req.end(JSON.stringify({ channel: 'open:order', data: { i } }));
      });
    }
    assert.deepEqual(order, Array.from({ length: 5 }, () => ['delivery', 'reply 200']).flat());
    assert.deepEqual(
      raw.messages.filter((m) => m.push?.pub).map((m) => m.push.pub.data.i),
      [0, 1, 2, 3, 4],
    );
    raw.ws.close();
  });

  test('publish errors: 200 with error body by default', async () => {
    assert.deepEqual((await post(node, '/api/publish', { channel: 'nope:a', data: 1 })).json.error.code, 102);
    assert.deepEqual((await post(node, '/api/publish', { channel: 'plain:a' })).json.error.code, 107);
    assert.deepEqual((await post(node, '/api/publish', { channel: '', data: 1 })).json.error.code, 107);
    const r = await post(node, '/api/publish', { channel: 'nope:a', data: 1 });
    assert.equal(r.status, 200);
    assert.equal(r.json.result, undefined);
  });

  test('transport error mode (header) maps codes to HTTP statuses', async () => {
    const h = { 'X-API-Key': API_KEY, 'X-Centrifugo-Error-Mode': 'transport' };
    const unknown = await post(node, '/api/publish', { channel: 'nope:a', data: 1 }, h);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.code, 102);
    const bad = await post(node, '/api/publish', { channel: 'plain:a' }, h);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, 107);
    const na = await post(node, '/api/history', { channel: 'plain:a' }, h);
    assert.equal(na.status, 400);
    assert.equal(na.json.code, 108);
  });

  test('broadcast answers one response per channel', async () => {
    const r = await post(node, '/api/broadcast', { channels: ['hist:b1', 'nope:x', 'plain:b'], data: { y: 2 } });
    const [a, b, c] = r.json.result.responses;
    assert.equal(a.result.offset, 1);
    assert.equal(b.error.code, 102);
    assert.deepEqual(c.result, {});
    assert.equal((await post(node, '/api/broadcast', { channels: [], data: 1 })).json.error.code, 107);
    assert.equal((await post(node, '/api/broadcast', { channels: ['plain:b', 7], data: 1 })).json.error.code, 107);
    // An empty name fails in its place, as in Centrifugo v6; the other channels are published.
    const mixed = await post(node, '/api/broadcast', { channels: ['hist:b1', ''], data: { y: 3 } });
    assert.equal(mixed.json.result.responses[0].result.offset, 2);
    assert.equal(mixed.json.result.responses[1].error.code, 107);
    // The payload is read once for every channel: missing or not base64, the call itself is refused.
    assert.equal((await post(node, '/api/broadcast', { channels: ['plain:b'] })).json.error.code, 107);
    assert.equal((await post(node, '/api/broadcast', { channels: ['plain:b'], b64data: '*' })).json.error.code, 107);
  });

  test('history, since/reverse, epoch mismatch, history_remove keeps the position', async () => {
    for (let i = 1; i <= 7; i++) await node.api.publish('hist:h', { i });
    const all = await node.api.history('hist:h', { limit: -1 });
    assert.deepEqual(all.publications.map((p) => p.data), [{ i: 3 }, { i: 4 }, { i: 5 }, { i: 6 }, { i: 7 }]);
    assert.equal(all.offset, 7);
    const since = await node.api.history('hist:h', { limit: 10, since: { offset: 5, epoch: all.epoch } });
    assert.deepEqual(since.publications.map((p) => p.offset), [6, 7]);
    const rev = await node.api.history('hist:h', { limit: 2, reverse: true });
    assert.deepEqual(rev.publications.map((p) => p.offset), [7, 6]);
    const wrong = await post(node, '/api/history', { channel: 'hist:h', since: { offset: 1, epoch: 'other' } });
    assert.equal(wrong.json.error.code, 112);
    const pos = await post(node, '/api/history', { channel: 'hist:h' });
    assert.deepEqual(pos.json.result, { publications: [], epoch: all.epoch, offset: 7 });
    // Fields of the wrong type are refused, not read as absent.
    for (const bad of [{ limit: 'x' }, { limit: 1.5 }, { since: { offset: -5, epoch: all.epoch } }, { since: { offset: 1, epoch: 3 } }, { since: 'x' }]) {
      assert.equal((await post(node, '/api/history', { channel: 'hist:h', ...bad })).json.error?.code, 107, JSON.stringify(bad));
    }
    await node.api.historyRemove('hist:h');
    const removed = await node.api.history('hist:h', { limit: -1 });
    assert.deepEqual(removed.publications, []);
    assert.equal(removed.offset, 7);
    assert.equal((await post(node, '/api/history_remove', { channel: 'plain:x' })).json.error.code, 108);
  });

  test('batch runs commands in order (and in parallel when asked); legacy /api form', async () => {
    const r = await post(node, '/api/batch', {
      commands: [{ publish: { channel: 'hist:batch', data: 1 } }, { publish: { channel: 'nope:x', data: 1 } }, { info: {} }],
    });
    assert.equal(r.json.result, undefined);
    assert.equal(r.json.replies.length, 3);
    assert.equal(r.json.replies[0].publish.offset, 1);
    assert.equal(r.json.replies[1].error.code, 102);
    assert.ok(Array.isArray(r.json.replies[2].info.nodes));
    const par = await post(node, '/api/batch', { parallel: true, commands: [{ publish: { channel: 'hist:batch', data: 2 } }] });
    assert.equal(par.json.replies[0].publish.offset, 2);
    const legacy = await post(node, '/api', { method: 'publish', params: { channel: 'hist:batch', data: 3 } });
    assert.equal(legacy.json.result.offset, 3);
  });

  test('batch ignores inherited names (constructor, toString) as unknown methods', async () => {
    const r = await post(node, '/api/batch', { commands: [{ constructor: {} }, { toString: {} }] });
    assert.deepEqual(r.json.replies.map((x: { error: { code: number } }) => x.error.code), [104, 104]);
  });

  test('in-process API: plain JSON results, HeraldApiError for API errors', async () => {
    await node.herald.publish('hist:plain', { deep: [1, 2] });
    const h = await node.herald.api('history', { channel: 'hist:plain', limit: -1 });
    assert.deepEqual((h.publications as Array<{ data: unknown }>)[0]!.data, { deep: [1, 2] });
    await assert.rejects(node.herald.api('publish', { channel: 'nope:a', data: 1 }), (e: unknown) => e instanceof HeraldApiError && e.apiCode === 102);
  });

  test('HeraldApi: no answer in time, or none at all, is a HeraldError (HERALD_ERR_API) naming the call', async () => {
    const silent = createServer(() => undefined); // takes the connection, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as { port: number };
    try {
      const slow = new HeraldApi(`http://127.0.0.1:${port}`, API_KEY, { timeoutMs: 200 });
      await assert.rejects(slow.info(), (e: unknown) => e instanceof HeraldError && e.code === 'HERALD_ERR_API' && /API info: no answer within 200 ms/.test(e.message));
    } finally {
      silent.close();
    }
    // Nothing listens there any more.
    await assert.rejects(new HeraldApi(`http://127.0.0.1:${port}`, API_KEY).publish('a', 1), (e: unknown) => e instanceof HeraldError && e.code === 'HERALD_ERR_API' && /API publish: /.test(e.message));
  });

  test('HeraldApi understands transport error mode answers', async () => {
    const transport = await startNode({ http_api: { error_mode: 'transport' } });
    try {
      await assert.rejects(transport.api.publish('nope:a', 1), (e: unknown) => e instanceof HeraldApiError && e.apiCode === 102);
    } finally {
      await transport.close();
    }
  });

  test('presence where the namespace keeps none is not available (108)', async () => {
    assert.equal((await post(node, '/api/presence', { channel: 'plain:a' })).json.error.code, 108);
    assert.equal((await post(node, '/api/presence_stats', { channel: 'plain:a' })).json.error.code, 108);
  });

  test('HeraldApi raises HeraldApiError with the API code; in-process publish works', async () => {
    await assert.rejects(node.api.publish('nope:a', 1), (err: unknown) => err instanceof HeraldApiError && err.apiCode === 102);
    const r = await node.herald.publish('hist:inproc', { z: 1 });
    assert.equal(r.offset, 1);
    const h = await node.api.history('hist:inproc', { limit: -1 });
    assert.deepEqual(h.publications[0]!.data, { z: 1 });
  });

  test('oversized chunked body (no Content-Length): 413, not a dropped connection', async () => {
    const small = await startNode({ http_api: { max_body_size: 1024 } });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: small.port, path: '/api/publish', method: 'POST', headers: { 'X-API-Key': API_KEY } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        for (let i = 0; i < 10; i++) req.write('x'.repeat(500));
        req.end();
      });
      assert.equal(status, 413);
    } finally {
      await small.close();
    }
  });

  test('a body sent in several chunks is read whole; an empty body is 400', async () => {
    const raw = await RawClient.open(node.wsUrl);
    await raw.connect({ token: await sign({ sub: 'u1' }) });
    await raw.call('subscribe', { channel: 'open:chunks' });
    const body = JSON.stringify({ channel: 'open:chunks', data: { text: 'é'.repeat(300), n: 7 } });
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(`${node.url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': API_KEY } }, (res) => {
        let t = '';
        res.setEncoding('utf8').on('data', (d: string) => (t += d)).on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
      });
      req.on('error', reject);
      // Chunked, split inside a two-byte character, with pauses so each piece is its own read.
      const bytes = Buffer.from(body);
      const cuts = [0, 11, 301, 302, 640, bytes.length];
      let i = 0;
      const next = () => {
        if (i + 1 >= cuts.length) return req.end();
        req.write(bytes.subarray(cuts[i], cuts[i + 1]));
        i++;
        setTimeout(next, 20);
      };
      next();
    });
    assert.equal(status, 200, text);
    assert.deepEqual(JSON.parse(text), { result: {} });
    await raw.waitFor((m) => m.push?.pub !== undefined);
    assert.deepEqual(raw.messages.find((m) => m.push?.pub)!.push.pub.data, { text: 'é'.repeat(300), n: 7 });
    raw.ws.close();
    const empty = await post(node, '/api/publish', '');
    assert.equal(empty.status, 400);
  });

  test('pipelined calls on one connection are answered in order', async () => {
    // What a publisher with keep-alive connections may do: several requests written at once.
    const sock = connect(node.port, '127.0.0.1');
    await new Promise((resolve) => sock.once('connect', resolve));
    const call = (body: string) =>
      `POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    sock.write(
      call(JSON.stringify({ channel: 'hist:pipe', data: 1 })) +
        call(JSON.stringify({ channel: 'nope:pipe', data: 2 })) +
        call(JSON.stringify({ channel: 'hist:pipe', data: 3 })),
    );
    let got = '';
    sock.setEncoding('utf8').on('data', (d: string) => (got += d));
    const deadline = Date.now() + 5000;
    while ((got.match(/HTTP\/1\.1 /g) ?? []).length < 3 || !got.endsWith('}')) {
      assert.ok(Date.now() < deadline, `three answers expected, got: ${got}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    sock.destroy();
    const bodies = got.split(/HTTP\/1\.1 /).slice(1).map((r) => JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4)));
    assert.equal(bodies[0].result.offset, 1);
    assert.equal(bodies[1].error.code, 102);
    assert.equal(bodies[2].result.offset, 2);
  });

  test('a client that goes away mid-body leaves the server serving', async () => {
    const sock = connect(node.port, '127.0.0.1');
    await new Promise((resolve) => sock.once('connect', resolve));
    sock.write(`POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ${API_KEY}\r\nContent-Length: 100\r\n\r\n{"channel":`);
    await new Promise((r) => setTimeout(r, 50));
    sock.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const r = await post(node, '/api/publish', { channel: 'plain:after', data: 1 });
    assert.deepEqual(r.json, { result: {} });
  });

  test('only /api and paths under it are the API', async () => {
    assert.equal((await post(node, '/api?x=1', { method: 'publish', params: { channel: 'plain:q', data: 1 } })).status, 200);
    assert.deepEqual((await post(node, '/api/publish?x=1#f', { channel: 'plain:q', data: 1 })).json, { result: {} });
    for (const path of ['/apix', '/api-publish', '/apipublish']) {
      const r = await post(node, path, { channel: 'plain:q', data: 1 });
      assert.equal(r.status, 404, path);
      assert.equal(r.text, 'not found\n', path);
    }
  });

  test('oversized body: 413', async () => {
    const big = 'x'.repeat(11 * 1024 * 1024);
    const r = await post(node, '/api/publish', { channel: 'plain:a', data: big });
    assert.equal(r.status, 413);
  });
});
