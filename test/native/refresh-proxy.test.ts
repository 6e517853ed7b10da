// The refresh proxy (Centrifugo's client.proxy.refresh) against a real backend: with it, an expiring
// connection is refreshed by the server, which asks the backend at the expiry (the client is not told
// of the expiry and never sends `refresh`); the backend extends it, changes its info, or ends it
// (3005); a failing backend leaves the connection open and is asked again later.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startBackend, type Backend, type BackendRequest } from '../helpers/backend.js';
import { client, openNamespace, record, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

type Seen = BackendRequest;

/** The backend's answer to a request. */
let reply: (seen: Seen) => unknown = () => ({ result: {} });
const seen: Seen[] = [];
let backend: Backend;
let node: TestNode;
const inSeconds = (s: number) => Math.floor(Date.now() / 1000) + s;

before(async () => {
  backend = await startBackend((s) => reply(s), seen);
  const url = backend.url;
  node = await startNode({
    client: { proxy: { connect: { endpoint: `${url}/connect` }, refresh: { endpoint: `${url}/refresh`, timeout: '2s' } } },
    channel: { namespaces: [openNamespace('chat', { history_size: 10, history_ttl: '60s', allow_publish_for_client: true })] },
  });
});
after(async () => {
  await node.close();
  backend.close();
});

const refreshes = (user?: string) => seen.filter((s) => s.path === '/refresh' && (user === undefined || s.body.user === user));

test('the backend is asked at the expiry and extends the connection with new info; the client is never told of the expiry', async () => {
  seen.length = 0;
  let round = 0;
  // The first refresh extends by two seconds, the second by an hour: two rounds, then quiet.
  reply = (s) =>
    s.path === '/connect'
      ? { result: { user: 'alice', info: { v: 0 }, expire_at: inSeconds(2) } }
      : { result: { expire_at: inSeconds(++round === 1 ? 2 : 3600), info: { v: round } } };
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: {} });
  const connect = (await raw.reply(1)).connect;
  assert.equal(connect.expires, undefined, 'no expires: the server refreshes');
  assert.equal(connect.ttl, undefined);
  await until(() => refreshes().length >= 2, 6000, 'two refreshes');
  const body = refreshes()[0]!.body;
  assert.equal(body.client, connect.client);
  assert.equal(body.user, 'alice');
  assert.equal(body.transport, 'websocket');
  assert.equal(raw.closeInfo, undefined, 'still open');

  // The info the backend gave last is the connection's in what it publishes (once applied).
  let id = 2;
  let last: unknown;
  for (const end = Date.now() + 3000; Date.now() < end; await sleep(50)) {
    raw.send({ id, publish: { channel: 'chat:1', data: { text: 'hi' } } });
    assert.deepEqual(await raw.reply(id), { id, publish: {} });
    id++;
    const history = await node.api.call('history', { channel: 'chat:1', limit: 1, reverse: true });
    last = (history as any).publications[0].info.conn_info;
    if ((last as { v: number }).v === 2) break;
  }
  assert.deepEqual(last, { v: 2 });
  raw.close();
});

test('the backend ends the connection with `expired`, or by giving no later expire_at: close 3005, and centrifuge-js reconnects', async () => {
  for (const answer of [{ result: { expired: true } }, { result: {} }, { result: { expire_at: inSeconds(-5) } }, { error: { code: 1000, message: 'x' } }]) {
    seen.length = 0;
    reply = (s) => (s.path === '/connect' ? { result: { user: 'bob', expire_at: inSeconds(2) } } : answer);
    const raw = await RawClient.open(node.wsUrl);
    raw.send({ id: 1, connect: {} });
    await raw.reply(1);
    const closed = await raw.waitClose();
    assert.equal(closed.code, 3005, JSON.stringify(answer));
    assert.equal(refreshes('bob').length, 1);
  }

  let connects = 0;
  reply = (s) => (s.path === '/connect' ? { result: { user: 'bob', expire_at: inSeconds(++connects === 1 ? 2 : 3600) } } : { result: { expired: true } });
  const c = client(node, { minReconnectDelay: 50, maxReconnectDelay: 100 });
  const events = record(c, 'connected', 'disconnected', 'connecting');
  c.connect();
  await until(() => events.filter(([e]) => e === 'connected').length === 2, 6000, 'a reconnect after 3005');
  const connecting = events.find(([e, ctx]) => e === 'connecting' && ctx.code === 3005);
  assert.ok(connecting, 'the SDK reconnects after 3005');
  c.disconnect();
});

test('a failing backend leaves the connection open, and the client\'s own refresh is a protocol error (3501)', async () => {
  seen.length = 0;
  reply = (s) => (s.path === '/connect' ? { result: { user: 'carol', expire_at: inSeconds(2) } } : [500, 'down']);
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: {} });
  await raw.reply(1);
  await until(() => refreshes().length === 1, 4000, 'the refresh');
  await sleep(1000);
  assert.equal(raw.closeInfo, undefined, 'still open after the failure');
  assert.equal(refreshes().length, 1, 'asked again only a minute later');
  raw.send({ id: 2, refresh: { token: await userToken('carol') } });
  assert.equal((await raw.waitClose()).code, 3501);
});

test('an answer that comes after the server API changed the expiry is dropped', async () => {
  seen.length = 0;
  let answer: (value: unknown) => void = () => undefined;
  reply = (s) => (s.path === '/connect' ? { result: { user: 'eve', expire_at: inSeconds(2) } } : new Promise((r) => (answer = r)));
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: {} });
  await raw.reply(1);
  await until(() => refreshes('eve').length === 1, 5000, 'the refresh asked');
  await node.api.call('refresh', { user: 'eve', expire_at: inSeconds(3600) });
  answer({ result: { expired: true } });
  await sleep(500);
  assert.equal(raw.closeInfo, undefined, 'the API extended it: the late `expired` is dropped');
  raw.close();
});

test('a connection with a token is refreshed by the backend too, when its token expires (no expires in its connect reply)', async () => {
  seen.length = 0;
  reply = () => ({ result: { expire_at: inSeconds(3600) } });
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: { token: await userToken('dave', {}, 60) } });
  const connect = (await raw.reply(1)).connect;
  assert.equal(connect.expires, undefined);
  assert.equal(connect.ttl, undefined);
  raw.close();
  const c = client(node, { token: await userToken('dave', {}, 2) });
  const events = record(c, 'connected', 'disconnected');
  c.connect();
  await until(() => refreshes().length === 1, 5000, 'the refresh');
  assert.equal(refreshes()[0]!.body.user, 'dave');
  await sleep(300);
  assert.deepEqual(events.map(([e]) => e), ['connected']);
  assert.equal(c.state, 'connected');
  c.disconnect();
});
