// HTTP streaming and SSE (Centrifugo's bidirectional emulation) with centrifuge-js over Node's fetch
// and the npm `eventsource` client, and with raw HTTP: connect, subscribe, publish, presence, rpc,
// pings, server disconnects as pushes, recovery after a reconnect, CORS and origins, the endpoints'
// errors, SSE framing, and a client that stops reading.
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { client, emulatedClient, once, openNamespace, record, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { sleep } from '../helpers/raw.js';

const ORIGIN = 'http://app.example';

let node: TestNode;
before(async () => {
  node = await startNode({
    client: {
      allow_anonymous_connect_without_token: true,
      http_stream: { enabled: true },
      sse: { enabled: true },
      allowed_origins: [ORIGIN],
      queue_max_size: 65536,
    },
    channel: {
      namespaces: [
        openNamespace('room', { allow_publish_for_client: true, allow_publish_for_anonymous: true, presence: true, allow_presence_for_subscriber: true, allow_presence_for_anonymous: true }),
        openNamespace('feed', { history_size: 100, history_ttl: '60s', force_recovery: true }),
      ],
    },
  });
});
after(() => node.close());

const TRANSPORTS = ['http_stream', 'sse'] as const;
type Transport = (typeof TRANSPORTS)[number];

function emulated(transport: Transport, opts: ConstructorParameters<typeof Centrifuge>[1] = {}, on = node): Centrifuge {
  const c = emulatedClient(transport, on.url, opts);
  on.clients.add(c);
  return c;
}

const code = (p: Promise<unknown>) => p.then(() => 0, (e: { code?: number }) => e.code);

for (const transport of TRANSPORTS) {
  describe(`centrifuge-js over ${transport}`, () => {
    test('connects, subscribes, gets what the API and other clients publish, in order, and sees presence', async () => {
      const c = emulated(transport, { token: await userToken('alice') });
      const states = record(c, 'connected');
      c.connect();
      await c.ready(3000);
      assert.equal(states[0]![1].transport, transport);
      const sub = c.newSubscription('room:1');
      const got: unknown[] = [];
      sub.on('publication', (ctx) => got.push(ctx.data));
      sub.subscribe();
      await sub.ready(3000);
      await node.api.publish('room:1', { n: 1 });
      await sub.publish({ n: 2, text: 'ünïcode ✓' });
      await node.api.publish('room:1', { n: 3 });
      await until(() => got.length === 3, 3000, 'three publications');
      assert.deepEqual(got, [{ n: 1 }, { n: 2, text: 'ünïcode ✓' }, { n: 3 }]);
      const presence = await sub.presence();
      assert.deepEqual(Object.values(presence.clients).map((p) => p.user), ['alice']);
      assert.deepEqual(await sub.presenceStats(), { numClients: 1, numUsers: 1 });
      // No RPC handler: 108, as over a WebSocket.
      assert.equal(await code(c.rpc('method', {})), 108);
      const gone = new Promise((r) => c.once('disconnected', r));
      c.disconnect();
      await gone;
      // The stream's end reaches the server: the session and its presence go.
      let clients = -1;
      for (let i = 0; i < 100 && clients !== 0; i++, await sleep(20)) clients = (await node.api.presenceStats('room:1')).num_clients;
      assert.equal(clients, 0);
    });

    test('pings go down the stream and pongs come by /emulation: the session outlives several pong timeouts', async () => {
      // Pings every 1 s, each to be answered within 0.7 s.
      const pinging = await startNode({
        client: { allow_anonymous_connect_without_token: true, http_stream: { enabled: true }, sse: { enabled: true }, ping_interval: '1s', pong_timeout: '700ms' },
        channel: { namespaces: [openNamespace('room')] },
      });
      try {
        const c = emulated(transport, {}, pinging);
        c.connect();
        await c.ready(3000);
        const events = record(c, 'connecting', 'disconnected');
        const sub = c.newSubscription('room:pings');
        const got: unknown[] = [];
        sub.on('publication', (ctx) => got.push(ctx.data));
        sub.subscribe();
        await sub.ready(3000);
        await sleep(3500);
        assert.deepEqual(events, []);
        assert.equal(c.state, 'connected');
        await pinging.api.publish('room:pings', 'still here');
        await until(() => got.length === 1, 3000, 'the publication');
      } finally {
        await pinging.close();
      }
    });

    test('a server disconnect arrives as a push: a terminal code stays disconnected with it', async () => {
      const c = emulated(transport, { token: await userToken(`terminal-${transport}`) });
      c.connect();
      await c.ready(3000);
      const disconnected = new Promise<{ code: number; reason: string }>((r) => c.once('disconnected', r));
      await node.api.call('disconnect', { user: `terminal-${transport}`, disconnect: { code: 3600, reason: 'go away' } });
      const ctx = await disconnected;
      assert.deepEqual([ctx.code, ctx.reason], [3600, 'go away']);
      await sleep(300);
      assert.equal(c.state, 'disconnected');
    });

    test('a reconnect code reconnects, and the subscription recovers what it missed, once and in order', async () => {
      const user = `recover-${transport}`;
      const c = emulated(transport, { token: await userToken(user) });
      c.connect();
      await c.ready(3000);
      const connecting = record(c, 'connecting');
      const sub = c.newSubscription(`feed:${transport}`);
      const subscribed = record(sub, 'subscribed');
      const got: unknown[] = [];
      sub.on('publication', (ctx) => got.push(ctx.data));
      sub.subscribe();
      await sub.ready(3000);
      for (let i = 1; i <= 3; i++) await node.api.publish(`feed:${transport}`, i);
      await until(() => got.length === 3, 3000, 'the first three');
      await node.api.call('disconnect', { user, disconnect: { code: 3020, reason: 'move along' } });
      for (let i = 4; i <= 8; i++) await node.api.publish(`feed:${transport}`, i);
      await until(() => got.length >= 8 && subscribed.length === 2, 5000, 'all eight, after a second subscribe');
      await sleep(100);
      assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.deepEqual([connecting[0]![1].code, connecting[0]![1].reason], [3020, 'move along']);
      assert.equal(subscribed[1]![1].wasRecovering, true);
      assert.equal(subscribed[1]![1].recovered, true);
    });
  });
}

// Raw HTTP: what a client sees on the wire.

interface RawStream {
  readonly res: IncomingMessage;
  /** The messages received so far (JSON lines, or SSE `data:` payloads), parsed. */
  readonly messages: any[];
  /** Everything received so far, as text. */
  text(): string;
  /** Resolves once the server ended the stream. */
  readonly ended: Promise<void>;
}

function openStream(kind: Transport, connect: Record<string, unknown>, headers: Record<string, string> = {}): Promise<RawStream> {
  const body = JSON.stringify(connect);
  const path = kind === 'sse' ? `/connection/sse?cf_connect=${encodeURIComponent(body)}` : '/connection/http_stream';
  return new Promise((resolve, reject) => {
    const req = request(`${node.url}${path}`, { method: kind === 'sse' ? 'GET' : 'POST', headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      let text = '';
      const messages: any[] = [];
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        messages.length = 0;
        if (kind === 'sse') {
          for (const event of text.split('\n\n').slice(0, -1)) {
            for (const line of event.split('\n')) if (line.startsWith('data: ')) messages.push(JSON.parse(line.slice(6)));
          }
        } else {
          for (const line of text.split('\n').slice(0, -1)) messages.push(JSON.parse(line));
        }
      });
      const ended = new Promise<void>((r) => res.on('end', r));
      resolve({ res, messages, text: () => text, ended });
    });
    req.on('error', reject);
    if (kind === 'http_stream') req.end(body);
    else req.end();
  });
}

/** POSTs an `/emulation` request: the commands joined by newlines, as the SDK sends them. */
async function emulate(session: string, nodeId: string, commands: Array<Record<string, unknown>>): Promise<number> {
  const data = commands.map((cmd) => JSON.stringify(cmd)).join('\n');
  const res = await fetch(`${node.url}/emulation`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ session, node: nodeId, data }) });
  return res.status;
}

describe('raw HTTP streaming and SSE', () => {
  test('an HTTP stream: no-cache headers, the connect reply with session and node, commands by /emulation, replies down the stream', async () => {
    const s = await openStream('http_stream', { id: 1, connect: {} });
    assert.equal(s.res.statusCode, 200);
    assert.equal(s.res.headers['cache-control'], 'private, no-cache, no-store, must-revalidate, max-age=0');
    assert.equal(s.res.headers['x-accel-buffering'], 'no');
    await until(() => s.messages.length === 1, 3000, 'the connect reply');
    const connect = s.messages[0].connect;
    assert.equal(s.messages[0].id, 1);
    assert.match(connect.session, /^[0-9a-f-]{36}$/);
    assert.notEqual(connect.session, connect.client);
    const info = await node.api.info();
    assert.equal(connect.node, info.nodes[0]!.uid);
    assert.equal(await emulate(connect.session, connect.node, [{ id: 2, subscribe: { channel: 'room:raw' } }, { id: 3, presence_stats: { channel: 'room:raw' } }]), 204);
    await until(() => s.messages.length === 3, 3000, 'two replies');
    assert.deepEqual(s.messages[1], { id: 2, subscribe: {} });
    assert.deepEqual(s.messages[2], { id: 3, presence_stats: { num_clients: 1, num_users: 1 } });
    await node.api.publish('room:raw', { x: 1 });
    await until(() => s.messages.length === 4, 3000, 'the publication');
    assert.deepEqual(s.messages[3], { push: { channel: 'room:raw', pub: { data: { x: 1 } } } });
    // The client id alone does not reach the session: its commands are not taken.
    assert.equal(await emulate(connect.client, connect.node, [{ id: 4, unsubscribe: { channel: 'room:raw' } }]), 204);
    // A command that is not JSON: the session ends with a disconnect push (3501), then the stream.
    const res = await fetch(`${node.url}/emulation`, { method: 'POST', body: JSON.stringify({ session: connect.session, node: connect.node, data: 'not json' }) });
    assert.equal(res.status, 204);
    await s.ended;
    assert.deepEqual(s.messages.at(-1), { push: { disconnect: { code: 3501, reason: 'bad request' } } });
    assert.equal(s.messages.length, 5);
  });

  test('SSE: a first "\\r\\n", one data event per message, and a payload with a raw CR in its whitespace still one valid event', async () => {
    const s = await openStream('sse', { id: 1, connect: {} });
    assert.equal(s.res.statusCode, 200);
    assert.equal(s.res.headers['content-type'], 'text/event-stream; charset=utf-8');
    await until(() => s.messages.length === 1, 3000, 'the connect reply');
    assert.ok(s.text().startsWith('\r\ndata: {"id":1,"connect":{'), s.text());
    const { session, node: nodeId } = s.messages[0].connect;
    assert.equal(await emulate(session, nodeId, [{ id: 2, subscribe: { channel: 'room:sse' } }]), 204);
    await until(() => s.messages.length === 2, 3000, 'the subscribe reply');
    // The server API keeps a payload's bytes: this one has a CR between tokens.
    const res = await fetch(`${node.url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': 'test-api-key' }, body: '{"channel":"room:sse","data":{"a":\r1,\r\n"b":[2]}}' });
    assert.equal(res.status, 200);
    await until(() => s.messages.length === 3, 3000, 'the publication');
    assert.deepEqual(s.messages[2], { push: { channel: 'room:sse', pub: { data: { a: 1, b: [2] } } } });
    assert.ok(!s.text().includes('\r', 2), 'no CR after the first line');
    s.res.destroy();
  });

  test('a client that stops reading its stream is cut off at client.queue_max_size (3008 slow at the end of what it had)', async () => {
    const s = await openStream('http_stream', { id: 1, connect: {} });
    await until(() => s.messages.length === 1, 3000, 'the connect reply');
    const { session, node: nodeId } = s.messages[0].connect;
    assert.equal(await emulate(session, nodeId, [{ id: 2, subscribe: { channel: 'room:slow' } }]), 204);
    await until(() => s.messages.length === 2, 3000, 'the subscribe reply');
    s.res.pause();
    const big = 'x'.repeat(16_000);
    let subscribers = 1;
    for (let i = 0; i < 400 && subscribers > 0; i++) {
      await node.api.publish('room:slow', { i, big });
      subscribers = (await node.api.channels('room:slow')).channels['room:slow']?.num_clients ?? 0;
    }
    assert.equal(subscribers, 0, 'the slow client was cut off');
    s.res.resume();
    await s.ended;
    assert.deepEqual(s.messages.at(-1), { push: { disconnect: { code: 3008, reason: 'slow' } } });
    assert.ok(s.messages.length < 400);
  });

  test("the server API's `session` narrows a call to the connection with that session id; a WebSocket has none", async () => {
    const ws = client(node);
    ws.connect();
    await once(ws, 'connected');
    const a = await openStream('http_stream', { id: 1, connect: {} });
    const b = await openStream('sse', { id: 1, connect: {} });
    await until(() => a.messages.length === 1 && b.messages.length === 1, 3000, 'the connect replies');
    const [sa, sb] = [a.messages[0].connect.session, b.messages[0].connect.session];
    // An unknown session (or a client id given as a session) reaches no connection.
    for (const session of ['nope', a.messages[0].connect.client]) await node.api.call('disconnect', { user: '', session });
    await sleep(200);
    assert.equal(a.messages.length + b.messages.length, 2, 'nobody disconnected');
    await node.api.call('disconnect', { user: '', session: sb, disconnect: { code: 4001, reason: 'only b' } });
    await b.ended;
    assert.deepEqual(b.messages.at(-1), { push: { disconnect: { code: 4001, reason: 'only b' } } });
    assert.equal(ws.state, 'connected', 'the WebSocket, which has no session id, was left alone');
    await node.api.call('subscribe', { user: '', channel: 'room:session', session: sa });
    await until(() => a.messages.length === 2, 3000, 'the subscribe push');
    assert.equal(a.messages[1].push.channel, 'room:session');
    a.res.destroy();
    ws.disconnect();
  });

  test('OPTIONS answers CORS for an allowed origin; a foreign origin gets 403', async () => {
    for (const path of ['/connection/http_stream', '/connection/sse', '/emulation']) {
      const pre = await fetch(`${node.url}${path}`, { method: 'OPTIONS', headers: { Origin: ORIGIN, 'Access-Control-Request-Headers': 'content-type' } });
      assert.equal(pre.status, 204, path);
      assert.equal(pre.headers.get('access-control-allow-origin'), ORIGIN);
      assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
      assert.equal(pre.headers.get('access-control-allow-headers'), 'content-type');
      assert.equal(pre.headers.get('access-control-max-age'), '300');
      assert.match(pre.headers.get('access-control-allow-methods')!, /POST/);
      const foreign = await fetch(`${node.url}${path}`, { method: 'POST', headers: { Origin: 'http://evil.example' }, body: '{"id":1,"connect":{}}' });
      assert.equal(foreign.status, 403, path);
      assert.equal(foreign.headers.get('access-control-allow-origin'), null);
    }
    const s = await openStream('http_stream', { id: 1, connect: {} }, { Origin: ORIGIN });
    assert.equal(s.res.headers['access-control-allow-origin'], ORIGIN);
    s.res.destroy();
  });

  test('bad requests: wrong method 405, no connect 400, too large 413, protobuf 415, unreadable or incomplete /emulation 400, unknown node 404', async () => {
    const at = (path: string, init: RequestInit = {}) => fetch(`${node.url}${path}`, init).then((r) => r.status);
    assert.equal(await at('/connection/http_stream'), 405);
    assert.equal(await at('/emulation'), 405);
    assert.equal(await at('/connection/sse'), 400);
    assert.equal(await at('/connection/http_stream', { method: 'POST', body: '' }), 400);
    assert.equal(await at('/connection/http_stream', { method: 'POST', body: 'x'.repeat(70_000) }), 413);
    assert.equal(await at('/emulation', { method: 'POST', body: 'x'.repeat(70_000) }), 413);
    assert.equal(await at('/connection/http_stream', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: 'x' }), 415);
    assert.equal(await at('/connection/http_stream', { method: 'POST', headers: { 'Content-Type': 'APPLICATION/Octet-Stream; charset=binary' }, body: 'x' }), 415);
    assert.equal(await at('/emulation', { method: 'POST', body: 'nope' }), 400);
    assert.equal(await at('/emulation', { method: 'POST', body: '{"session":"s","node":"n"}' }), 400);
    assert.equal(await at('/emulation', { method: 'POST', body: '{"session":"s","node":"no-such-node","data":"{}"}' }), 404);
    // A bad connect command ends the stream with a disconnect push, as a WebSocket would be closed.
    const s = await openStream('sse', { id: 1, connect: { token: 'not a token' } });
    await s.ended;
    assert.deepEqual(s.messages, [{ push: { disconnect: { code: 3500, reason: 'invalid token' } } }]);
  });

  test('a node shutting down ends each stream with 3001 shutdown', async () => {
    const other = await startNode({ client: { allow_anonymous_connect_without_token: true, sse: { enabled: true } } });
    const req = await fetch(`${other.url}/connection/sse?cf_connect=${encodeURIComponent('{"id":1,"connect":{}}')}`);
    const text = req.text();
    await sleep(100);
    await other.close();
    const lines = (await text).split('\n').filter((l) => l.startsWith('data: '));
    assert.equal(lines.length, 2);
    assert.deepEqual(JSON.parse(lines[1]!.slice(6)), { push: { disconnect: { code: 3001, reason: 'shutdown' } } });
  });
});

test('the emulation endpoints are closed unless the config opens them', async () => {
  const plain = await startNode({ client: { allow_anonymous_connect_without_token: true } });
  try {
    for (const [path, method] of [['/connection/http_stream', 'POST'], ['/connection/sse', 'GET'], ['/emulation', 'POST']] as const) {
      const res = await fetch(`${plain.url}${path}?cf_connect=%7B%7D`, { method, body: method === 'POST' ? '{"id":1,"connect":{}}' : undefined });
      assert.equal(res.status, 404, path);
    }
  } finally {
    await plain.close();
  }
});
