// Connection limits (Centrifugo's names): client.connection_limit and client.connection_rate_limit
// answer a new connection 503 (WebSocket upgrade, HTTP stream, SSE), and centrifuge-js keeps trying
// until a place frees; client.user_connection_limit closes a user's connect over it with 3504
// (terminal). Each limit is counted in the metrics and logged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { connect } from 'node:net';
import { loadConfig, type HeraldConfigInput } from '../../src/index.js';
import { ConnectionLimits } from '../../src/dialects/native/limits.js';
import { SessionRegistry } from '../../src/dialects/native/registry.js';
import { client, emulatedClient, once, record, refusedCount, startNode, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep, upgradeAnswer } from '../helpers/raw.js';

const upgradeStatus = async (url: string) => (await upgradeAnswer(url)).status;

/**
 * Sends a WebSocket upgrade on a raw TCP socket that never closes its own side; resolves with what the
 * server answered once the server has closed the connection, not just ended its side (rejects if it
 * has not within 2 s).
 */
function refusedUpgrade(port: number, path = '/connection/websocket'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setEncoding('utf8');
    socket.allowHalfOpen = true; // the client keeps its side open, as a slow or hostile one would
    let text = '';
    socket.on('data', (chunk: string) => (text += chunk));
    let poke: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      clearInterval(poke);
      socket.destroy();
      reject(new Error(`the server kept a refused upgrade open (it answered ${JSON.stringify(text.split('\r\n')[0])})`));
    }, 2000);
    // The server's answer ends its side; whether it closed the connection too shows when this side
    // writes: a closed socket answers with a reset.
    socket.on('end', () => (poke = setInterval(() => socket.write('x'), 50)));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      clearInterval(poke);
      resolve(text);
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
  });
}

const refusedBody = async (port: number) => (await refusedUpgrade(port)).split('\r\n\r\n')[1] ?? '';

/** Waits (bounded) until the node holds `n` client connections. */
async function connectionsAre(node: TestNode, n: number, what = `${n} connections`): Promise<void> {
  const end = Date.now() + 5000;
  while (((await node.herald.api('info')) as { nodes: Array<{ num_clients: number }> }).nodes[0]!.num_clients !== n) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const refused = (node: TestNode, limit: string) => refusedCount(node, 'native', limit);

/** A node whose log lines are kept in `lines`. */
async function loggedNode(extra: HeraldConfigInput) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { node: await startNode(extra, logger), lines };
}

test('client.connection_limit: past it a WebSocket, an HTTP stream or SSE is answered 503; centrifuge-js connects once a place frees', async () => {
  const { node, lines } = await loggedNode({
    metrics: { enabled: true },
    client: { connection_limit: 2, http_stream: { enabled: true }, sse: { enabled: true } },
  });
  try {
    // A socket that never sends its connect command holds a place too (until stale_close_delay).
    const idle = await RawClient.open(node.wsUrl);
    const alice = client(node, { token: await userToken('alice'), minReconnectDelay: 50, maxReconnectDelay: 200 });
    alice.connect();
    await once(alice, 'connected');
    assert.equal(await upgradeStatus(node.wsUrl), 503);
    const stream = await fetch(`${node.url}/connection/http_stream`, { method: 'POST', body: JSON.stringify({ id: 1, connect: {} }) });
    assert.equal(stream.status, 503);
    assert.equal(await stream.text(), 'node connection limit reached (client.connection_limit), retry later\n');
    const sse = await fetch(`${node.url}/connection/sse?cf_connect=${encodeURIComponent(JSON.stringify({ id: 1, connect: {} }))}`);
    assert.equal(sse.status, 503);
    assert.equal(await refused(node, 'connection_limit'), 3);
    assert.equal(lines.filter((l) => /node connection limit reached/.test(String(l.msg))).length, 1, 'the warning is logged once, not per refusal');
    assert.equal(lines.find((l) => /node connection limit reached/.test(String(l.msg)))?.limit, 2);

    // centrifuge-js keeps trying while the node is full, and connects when a place frees.
    const bob = client(node, { token: await userToken('bob'), minReconnectDelay: 50, maxReconnectDelay: 200 });
    const events = record(bob, 'connected', 'disconnected');
    bob.connect();
    await sleep(600);
    assert.equal(bob.state, 'connecting');
    assert.deepEqual(events, []);
    idle.close();
    await once(bob, 'connected', 3000);
    assert.equal(await upgradeStatus(node.wsUrl), 503, 'full again');
    bob.disconnect();
    await connectionsAre(node, 1, 'bob gone (alice stays)');
    assert.equal(await upgradeStatus(node.wsUrl), 101, 'a place freed by a client that left');
  } finally {
    await node.close();
  }
});

test('client.connection_rate_limit: a burst of that many, then that many a second (on a clock the test moves)', () => {
  let clock = 1000;
  const config = loadConfig({ values: { client: { connection_rate_limit: 3 } } });
  const limits = new ConnectionLimits(config, new SessionRegistry(), pino({ level: 'silent' }), () => clock);
  assert.deepEqual([limits.admit(), limits.admit(), limits.admit(), limits.admit()], [undefined, undefined, undefined, 'connection_rate_limit']);
  clock += 340; // a third of a second: one more
  assert.deepEqual([limits.admit(), limits.admit()], [undefined, 'connection_rate_limit']);
  clock += 60_000; // a long quiet: still a burst of 3 at most
  assert.deepEqual([limits.admit(), limits.admit(), limits.admit(), limits.admit()], [undefined, undefined, undefined, 'connection_rate_limit']);
  assert.equal(limits.refused.connection_rate_limit, 3);
});

test('client.connection_rate_limit on a node: past it, 503 naming the limit, until the second refills', async () => {
  const { node, lines } = await loggedNode({ metrics: { enabled: true }, client: { connection_rate_limit: 1 } });
  try {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push(await upgradeStatus(node.wsUrl));
    assert.deepEqual(statuses, [101, 503, 503]);
    assert.equal(await refused(node, 'connection_rate_limit'), 2);
    assert.match(await refusedBody(node.port), /^connection rate limit reached \(client\.connection_rate_limit\), retry later$/m);
    assert.ok(lines.some((l) => /connection rate limit reached/.test(String(l.msg))));
    await sleep(1100); // a second: one more
    assert.equal(await upgradeStatus(node.wsUrl), 101);
    assert.equal(await upgradeStatus(node.wsUrl), 503);
  } finally {
    await node.close();
  }
});

test('client.user_connection_limit: a user\'s connect over it is closed 3504 (the SDK stays disconnected); others and anonymous ones are not counted', async () => {
  const { node, lines } = await loggedNode({
    metrics: { enabled: true },
    client: { user_connection_limit: 2, allow_anonymous_connect_without_token: true, http_stream: { enabled: true } },
  });
  try {
    const token = await userToken('alice');
    const first = client(node, { token });
    const second = emulatedClient('http_stream', node.url, { token });
    node.clients.add(second);
    first.connect();
    second.connect();
    await Promise.all([once(first, 'connected'), once(second, 'connected')]);

    const third = client(node, { token, minReconnectDelay: 50, maxReconnectDelay: 200 });
    const disconnected = once<{ code: number; reason: string }>(third, 'disconnected');
    third.connect();
    assert.deepEqual(await disconnected, { code: 3504, reason: 'connection limit' });
    await sleep(400);
    assert.equal(third.state, 'disconnected', 'terminal: no reconnect');
    assert.equal(await refused(node, 'user_connection_limit'), 1);
    const line = lines.find((l) => /limit of connections for user reached/.test(String(l.msg)));
    assert.equal(line?.user, 'alice');
    assert.equal(line?.limit, 2);

    const raw = await RawClient.open(node.wsUrl);
    raw.send({ id: 1, connect: { token } });
    assert.equal((await raw.waitClose()).code, 3504);
    assert.equal(raw.messages.length, 0, 'no connect reply before the close');

    // Another user, and anonymous connections, are not held back by alice's.
    const bob = client(node, { token: await userToken('bob') });
    bob.connect();
    await once(bob, 'connected');
    const anonymous = [client(node), client(node), client(node)];
    for (const c of anonymous) c.connect();
    await Promise.all(anonymous.map((c) => once(c, 'connected')));

    // When one of alice's connections goes, she may connect again.
    first.disconnect();
    await connectionsAre(node, 1 + 1 + 3, 'alice\'s first connection gone');
    const again = client(node, { token });
    again.connect();
    await once(again, 'connected');
  } finally {
    await node.close();
  }
});

test('the limits are off by default: many connections of one user, opened at once', async () => {
  const node = await startNode();
  try {
    const token = await userToken('alice');
    const clients = Array.from({ length: 30 }, () => client(node, { token }));
    for (const c of clients) c.connect();
    await Promise.all(clients.map((c) => once(c, 'connected')));
  } finally {
    await node.close();
  }
});

test('a refused upgrade (503 at the limit, 404 elsewhere) is closed by the server even while its client keeps its side open; the node then stops at once', async () => {
  const node = await startNode({ client: { connection_limit: 1 } });
  const idle = await RawClient.open(node.wsUrl);
  const answers = await Promise.all(Array.from({ length: 20 }, () => refusedUpgrade(node.port)));
  for (const a of answers) assert.match(a, /^HTTP\/1\.1 503 /);
  assert.match(await refusedUpgrade(node.port, '/elsewhere'), /^HTTP\/1\.1 404 /);
  idle.close();
  const started = Date.now();
  await node.close();
  assert.ok(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`);
});
