// Connecting with and without connection tokens: anonymous access, expired, forged and
// mis-claimed tokens, connection expiry (`exp`, `expire_at`) and `refresh`, seen by centrifuge-js
// and on the wire.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import { client, once, record, sign, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { openHttpStream, RawClient, sleep } from '../helpers/raw.js';
import { startBackend } from '../helpers/backend.js';
import { loadConfig } from '../../src/index.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const now = () => Math.floor(Date.now() / 1000);

let node: TestNode;
before(async () => {
  node = await startNode({ client: { expired_close_delay: '1s' } });
});
after(() => node.close());

test('a valid token connects centrifuge-js; the connect reply has client, version, ping and pong', async () => {
  const c = client(node, { token: await userToken('alice') });
  const connected = once<{ client: string; transport: string }>(c, 'connected');
  c.connect();
  const ctx = await connected;
  assert.match(ctx.client, UUID);
  assert.equal(ctx.transport, 'websocket');
  c.disconnect();

  const raw = await RawClient.open(node.wsUrl);
  raw.send({ connect: { token: await sign({ sub: 'alice' }), name: 'js' }, id: 1 });
  await raw.reply(1);
  assert.match(raw.frames[0]!, /^\{"id":1,"connect":\{/);
  const result = raw.messages[0]!.connect;
  assert.match(result.client, UUID);
  assert.equal(typeof result.version, 'string');
  assert.ok(result.version.length > 0);
  assert.equal(result.ping, 25);
  assert.equal(result.pong, true);
  assert.equal('expires' in result, false, 'a token without exp does not expire the connection');
  assert.equal('ttl' in result, false);
  assert.equal('error' in raw.messages[0]!, false);
  raw.close();
});

test('without a token and with anonymous connections off: close 3501, the SDK ends disconnected and stays so', async () => {
  const raw = await RawClient.open(node.wsUrl);
  raw.send({ id: 1, connect: {} });
  const closed = await raw.waitClose();
  assert.equal(closed.code, 3501);
  assert.equal(raw.messages.length, 0, 'no reply before the close');

  const c = client(node);
  const log = record(c, 'connecting', 'connected', 'disconnected');
  const disconnected = once<{ code: number }>(c, 'disconnected');
  c.connect();
  assert.equal((await disconnected).code, 3501);
  await sleep(400); // longer than the test client's largest reconnect delay
  assert.equal(c.state, 'disconnected');
  assert.deepEqual(log.map(([e]) => e), ['connecting', 'disconnected']);
});

test('anonymous connections are accepted when allow_anonymous_connect_without_token is on', async () => {
  const anon = await startNode({ client: { allow_anonymous_connect_without_token: true } });
  try {
    const c = client(anon);
    const connected = once<{ client: string }>(c, 'connected');
    c.connect();
    assert.match((await connected).client, UUID);
    c.disconnect();
    // A token still works (and its user is kept) on such a node.
    const raw = await RawClient.open(anon.wsUrl);
    const result = await raw.connect({ token: await userToken('bob') });
    assert.match(result.client, UUID);
    raw.close();
  } finally {
    await anon.close();
  }
});

test('a token without a user connects anonymously, unless client.disallow_anonymous_connection_tokens: then close 3507 and the SDK stays disconnected', async () => {
  const anonToken = await sign({ sub: '' });
  const open = client(node, { token: anonToken });
  const connected = once<{ client: string }>(open, 'connected');
  open.connect();
  assert.match((await connected).client, UUID);
  open.disconnect();
  const strict = await startNode({ client: { disallow_anonymous_connection_tokens: true } });
  try {
    const c = client(strict, { token: anonToken });
    const disconnected = once<{ code: number; reason: string }>(c, 'disconnected');
    c.connect();
    assert.deepEqual(await disconnected, { code: 3507, reason: 'permission denied' });
    await sleep(400);
    assert.equal(c.state, 'disconnected');
    const alice = client(strict, { token: await userToken('alice') });
    alice.connect();
    await once(alice, 'connected');
  } finally {
    await strict.close();
  }
});

test('client.connect_include_server_time: the connect result carries the server time (ms); without it, none', async () => {
  const raw = await RawClient.open(node.wsUrl);
  assert.equal((await raw.connect({ token: await userToken('alice') })).time, undefined);
  raw.close();
  const timed = await startNode({ client: { connect_include_server_time: true } });
  try {
    const r = await RawClient.open(timed.wsUrl);
    const before = Date.now();
    const { time } = await r.connect({ token: await userToken('alice') });
    assert.ok(typeof time === 'number' && time >= before - 1000 && time <= Date.now() + 1000, `time ${time}`);
    r.close();
  } finally {
    await timed.close();
  }
});

test('an expired connection token: error 109, the rest of the frame dropped, the connection unusable', async () => {
  const raw = await RawClient.open(node.wsUrl);
  const expired = await sign({ sub: 'alice' }, { expIn: -10 });
  raw.send({ id: 1, connect: { token: expired } }, { id: 2, history: { channel: 'x' } });
  const reply = await raw.reply(1);
  assert.deepEqual(reply.error?.code, 109);
  await sleep(100);
  assert.equal(raw.messages.some((m) => m.id === 2), false, 'commands after a failed connect are not answered');
  assert.equal(raw.closeInfo, undefined);
  raw.send({ id: 3, history: { channel: 'x' } });
  assert.equal((await raw.waitClose()).code, 3501);
});

test('an expired token makes centrifuge-js call getToken and then connect with the fresh one', async () => {
  let calls = 0;
  const c = client(node, {
    token: await sign({ sub: 'alice' }, { expIn: -10 }),
    getToken: async () => {
      calls++;
      return userToken('alice');
    },
  });
  const errors = record(c, 'error');
  const connected = once(c, 'connected');
  c.connect();
  await connected;
  assert.equal(calls, 1);
  assert.equal(errors[0]?.[1]?.error?.code, 109);
  c.disconnect();
});

test('forged or malformed tokens close with 3500; centrifuge-js ends disconnected without reconnecting', async () => {
  const forged = [
    await sign({ sub: 'alice' }, { secret: 'not-the-secret', expIn: 60 }),
    'not.a.jwt',
    // alg "none": never accepted.
    `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"alice"}').toString('base64url')}.`,
    // a `channel` claim makes it a subscription token: invalid for connecting.
    await sign({ sub: 'alice', channel: 'news' }, { expIn: 60 }),
    // claims of the wrong type, which Centrifugo cannot read either
    await sign({ sub: 'alice', channels: 'news' }, { expIn: 60 }),
    await sign({ sub: 'alice', channels: ['news', 1] }, { expIn: 60 }),
    await sign({ sub: 'alice', subs: ['news'] }, { expIn: 60 }),
    await sign({ sub: 'alice', expire_at: 'tomorrow' }, { expIn: 60 }),
    await sign({ sub: 'alice', b64info: {} }, { expIn: 60 }),
    // a user id that is no string nor number would connect as no user at all
    await sign({ sub: { id: 'alice' } }, { expIn: 60 }),
    await sign({ sub: ['alice'] }, { expIn: 60 }),
    // not valid yet
    await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setNotBefore(now() + 600).sign(new TextEncoder().encode('test-secret-0123456789')),
  ];
  for (const token of forged) {
    const raw = await RawClient.open(node.wsUrl);
    raw.send({ id: 1, connect: { token } });
    const closed = await raw.waitClose();
    assert.equal(closed.code, 3500, `token ${token.slice(0, 40)}…`);
    assert.equal(raw.messages.length, 0);
  }

  let getTokenCalls = 0;
  const c = client(node, {
    token: forged[0],
    getToken: async () => {
      getTokenCalls++;
      return userToken('alice');
    },
  });
  const log = record(c, 'connecting', 'connected', 'disconnected');
  const disconnected = once<{ code: number; reason: string }>(c, 'disconnected');
  c.connect();
  const ctx = await disconnected;
  assert.equal(ctx.code, 3500);
  assert.equal(ctx.reason, 'invalid token');
  await sleep(400);
  assert.equal(c.state, 'disconnected');
  assert.deepEqual(log.map(([e]) => e), ['connecting', 'disconnected']);
  assert.equal(getTokenCalls, 0, '3500 is terminal: no new token, no new attempt');
});

test('other HMAC algorithms are accepted with the secret', async () => {
  for (const alg of ['HS384', 'HS512']) {
    const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg }).setExpirationTime(now() + 60).sign(new TextEncoder().encode('test-secret-0123456789'));
    const raw = await RawClient.open(node.wsUrl);
    const result = await raw.connect({ token });
    assert.match(result.client, UUID);
    raw.close();
  }
});

/** Connects with a token of each case's claims: connected ('ok'), or closed with the code given. */
async function checkConnects(n: TestNode, cases: Array<[Record<string, unknown>, number | 'ok']>): Promise<void> {
  for (const [claims, want] of cases) {
    const raw = await RawClient.open(n.wsUrl);
    raw.send({ id: 1, connect: { token: await sign(claims, { expIn: 60 }) } });
    if (want === 'ok') assert.ok((await raw.reply(1)).connect, JSON.stringify(claims));
    else assert.equal((await raw.waitClose()).code, want, JSON.stringify(claims));
    raw.close();
  }
}

test('audience and issuer are checked when configured', async () => {
  const strict = await startNode({ client: { token: { audience: 'herald-tests', issuer: 'test-issuer' } } });
  try {
    const cases: Array<[Record<string, unknown>, number | 'ok']> = [
      [{ sub: 'a', aud: 'herald-tests', iss: 'test-issuer' }, 'ok'],
      [{ sub: 'a', aud: 'someone-else', iss: 'test-issuer' }, 3500],
      [{ sub: 'a', aud: 'herald-tests', iss: 'other-issuer' }, 3500],
      [{ sub: 'a' }, 3500],
    ];
    await checkConnects(strict, cases);
  } finally {
    await strict.close();
  }
});

test('audience_regex and issuer_regex: the claim must match (one of aud\'s values); the subscription token\'s too', async () => {
  const strict = await startNode({
    client: {
      token: { audience_regex: '^herald-(tests|prod)$', issuer_regex: '^https://auth\\.example\\.com/' },
      subscription_token: { enabled: true, hmac_secret_key: 'test-secret-0123456789', audience_regex: '^subs$' },
    },
    channel: { namespaces: [{ name: 'room' }] },
  });
  try {
    const iss = 'https://auth.example.com/realm';
    const cases: Array<[Record<string, unknown>, number | 'ok']> = [
      [{ sub: 'a', aud: 'herald-prod', iss }, 'ok'],
      [{ sub: 'a', aud: ['other', 'herald-tests'], iss }, 'ok'],
      [{ sub: 'a', aud: 'herald-dev', iss }, 3500],
      [{ sub: 'a', aud: 'herald-tests', iss: 'https://evil.example/realm' }, 3500],
      [{ sub: 'a', iss }, 3500],
    ];
    await checkConnects(strict, cases);
    // Expired and for another audience: invalid (3500), as with `audience`, not expired (109, which the SDK would refresh).
    const stale = await RawClient.open(strict.wsUrl);
    stale.send({ id: 1, connect: { token: await sign({ sub: 'a', aud: 'herald-dev', iss }, { expIn: -60 }) } });
    assert.equal((await stale.waitClose()).code, 3500);
    const raw = await RawClient.open(strict.wsUrl);
    await raw.connect({ token: await sign({ sub: 'a', aud: 'herald-tests', iss }, { expIn: 60 }) });
    const subToken = (aud: string) => sign({ sub: 'a', channel: 'room:1', aud }, { expIn: 60 });
    assert.equal((await raw.call('subscribe', { channel: 'room:1', token: await subToken('other') })).error?.code, 103);
    assert.ok((await raw.call('subscribe', { channel: 'room:1', token: await subToken('subs') })).subscribe);
    raw.close();
  } finally {
    await strict.close();
  }
  assert.throws(() => loadConfig({ values: { client: { token: { audience: 'a', audience_regex: '^a$' } } } }), /client\.token\.audience_regex: set audience or audience_regex, not both/);
  // An issuer_regex that allows none matches a token without `iss`; Go's named groups are read.
  const lenient = await startNode({ client: { token: { issuer_regex: '^(?P<realm>https://auth\\.example\\.com/.*)?$' } } });
  try {
    await checkConnects(lenient, [
      [{ sub: 'a' }, 'ok'],
      [{ sub: 'a', iss: 'https://auth.example.com/x' }, 'ok'],
      [{ sub: 'a', iss: 'https://other.example/' }, 3500],
    ]);
  } finally {
    await lenient.close();
  }
});

test('token exp and expire_at give expires/ttl in the connect result', async () => {
  const cases: Array<[Record<string, unknown>, number | undefined]> = [
    [{ sub: 'alice', exp: now() + 120 }, 120],
    [{ sub: 'alice', exp: now() + 3600, expire_at: now() + 50 }, 50],
    [{ sub: 'alice', exp: now() + 3600, expire_at: 0 }, undefined],
  ];
  for (const [claims, ttl] of cases) {
    const raw = await RawClient.open(node.wsUrl);
    const result = await raw.connect({ token: await sign(claims) });
    if (ttl === undefined) {
      assert.equal('expires' in result, false, JSON.stringify(claims));
      assert.equal('ttl' in result, false);
    } else {
      assert.equal(result.expires, true);
      assert.ok(result.ttl >= ttl - 2 && result.ttl <= ttl, `ttl ${result.ttl} for ${ttl}`);
      // Rounded down: a client refreshing after ttl seconds does so before the expiry, never after.
      const left = (claims.expire_at ? (claims.expire_at as number) : (claims.exp as number)) - Date.now() / 1000;
      assert.ok(result.ttl <= left, `ttl ${result.ttl} past the ${left.toFixed(3)} s left`);
    }
    raw.close();
  }
});

test('an unrefreshed connection closes with 3005; a refreshed one stays, with the new ttl', async () => {
  const stale = await RawClient.open(node.wsUrl);
  const fresh = await RawClient.open(node.wsUrl);
  // 2 s: `exp` is in whole seconds, so a token of 1 s may have expired by the time it is checked.
  const staleResult = await stale.connect({ token: await sign({ sub: 'alice' }, { expIn: 2 }) });
  const freshResult = await fresh.connect({ token: await sign({ sub: 'alice' }, { expIn: 2 }) });
  assert.equal(staleResult.expires, true);
  assert.equal(freshResult.expires, true);
  assert.ok(staleResult.ttl >= 1 && staleResult.ttl <= 2);

  const refreshed = await fresh.call('refresh', { token: await sign({ sub: 'alice' }, { expIn: 600 }) });
  assert.equal(refreshed.refresh.expires, true);
  assert.ok(refreshed.refresh.ttl > 590 && refreshed.refresh.ttl <= 600);

  assert.equal((await stale.waitClose(5000)).code, 3005);
  assert.equal(fresh.closeInfo, undefined, 'the refreshed connection is still open');
  // and still works
  assert.ok((await fresh.call('unsubscribe', { channel: 'x' })).unsubscribe);
  fresh.close();
});

test('refresh with a bad token: empty 3501, another user or forged 3500, expired 3005', async () => {
  const cases: Array<[() => Promise<string>, number]> = [
    [async () => '', 3501],
    [() => userToken('mallory'), 3500],
    [() => sign({ sub: 'alice' }, { secret: 'wrong', expIn: 60 }), 3500],
    [() => sign({ sub: 'alice' }, { expIn: -10 }), 3005],
    // `expire_at` in the past, `exp` still ahead: expired all the same, at once.
    [() => sign({ sub: 'alice', expire_at: Math.floor(Date.now() / 1000) - 10 }, { expIn: 600 }), 3005],
  ];
  for (const [token, code] of cases) {
    const raw = await RawClient.open(node.wsUrl);
    await raw.connect({ token: await userToken('alice') });
    raw.send({ id: 2, refresh: { token: await token() } });
    assert.equal((await raw.waitClose(1000)).code, code);
  }
});

test('centrifuge-js refreshes an expiring connection through getToken and stays connected', async () => {
  let calls = 0;
  const c = client(node, {
    token: await sign({ sub: 'alice' }, { expIn: 2 }),
    getToken: async () => {
      calls++;
      return sign({ sub: 'alice' }, { expIn: 600 });
    },
  });
  const log = record(c, 'connecting', 'connected', 'disconnected', 'error');
  c.connect();
  await c.ready(3000);
  await until(() => calls === 1, 4000, 'getToken for the refresh');
  // Past the first token's expiry plus the close delay: the connection must still be the same one.
  await sleep(3200);
  assert.equal(c.state, 'connected');
  assert.deepEqual(log.map(([e]) => e), ['connecting', 'connected']);
  assert.equal(calls, 1);
  c.disconnect();
});

test('centrifuge-js without getToken whose token expired is told so and does not loop', async () => {
  const c = client(node, { token: await sign({ sub: 'alice' }, { expIn: -10 }) });
  const disconnected = once<{ code: number }>(c, 'disconnected');
  c.connect();
  const ctx = await disconnected;
  assert.equal(ctx.code, 1, 'unauthorized: the SDK cannot get a new token');
  await sleep(300);
  assert.equal(c.state, 'disconnected');
});

test('a custom user_id_claim with a numeric value is the same user for connect, refresh and subscription tokens', async () => {
  const custom = await startNode({ client: { token: { user_id_claim: 'uid' } }, channel: { namespaces: [{ name: 'secret' }] } });
  try {
    const raw = await RawClient.open(custom.wsUrl);
    await raw.connect({ token: await sign({ uid: 42 }, { expIn: 60 }) });
    const refreshed = await raw.call('refresh', { token: await sign({ uid: 42 }, { expIn: 600 }) });
    assert.ok(refreshed.refresh, JSON.stringify(refreshed));
    const sub = await raw.call('subscribe', { channel: 'secret:1', token: await sign({ uid: 42, channel: 'secret:1' }, { expIn: 60 }) });
    assert.ok(sub.subscribe, JSON.stringify(sub));
    await custom.api.publish('secret:1', 'hi');
    await raw.waitFor((m) => m.push?.channel === 'secret:1');
    // The API finds the connection under the same user id.
    await custom.api.disconnect('42', { disconnect: { code: 3011, reason: '' } });
    assert.equal((await raw.waitClose()).code, 3011);
  } finally {
    await custom.close();
  }
});

test('client.user_id_http_header: a request a gateway named a user in connects as that user without a token; without the header (or empty) a token is still required; a token wins', async () => {
  const n = await startNode({
    client: { user_id_http_header: 'X-User-Id', http_stream: { enabled: true } },
    channel: { namespaces: [{ name: 'room', allow_subscribe_for_client: true, presence: true }] },
  });
  try {
    const who = async (headers: Record<string, string>, connect: Record<string, unknown>, channel: string): Promise<string | number> => {
      const raw = await RawClient.open(n.wsUrl, { ws: { headers } });
      raw.send({ id: 1, connect });
      const reply = await raw.reply(1).catch(() => undefined);
      if (!reply?.connect) {
        const closed = await raw.closed;
        return closed.code;
      }
      raw.send({ id: 2, subscribe: { channel } });
      await raw.reply(2);
      const presence = (await n.api.call('presence', { channel })) as { presence: Record<string, { user: string }> };
      raw.ws.close();
      return Object.values(presence.presence)[0]!.user;
    };
    assert.equal(await who({ 'X-User-Id': 'alice' }, {}, 'room:1'), 'alice');
    assert.equal(await who({ 'x-user-id': 'bob', 'X-Other': 'x' }, {}, 'room:2'), 'bob', 'header names are not case-sensitive');
    assert.equal(await who({ 'X-User-Id': 'alice' }, { token: await userToken('carol') }, 'room:3'), 'carol', 'a token, when given, is verified and used');
    assert.equal(await who({}, {}, 'room:4'), 3501, 'no header: a token is required');
    assert.equal(await who({ 'X-User-Id': '' }, {}, 'room:5'), 3501, 'an empty header is none');
    // Given twice (a gateway that adds instead of setting it): none.
    const twice = await openRawHttp(n.port, ['X-User-Id: mallory', 'X-User-Id: alice']);
    assert.match(twice, /"disconnect":\{"code":3501/);
    // HTTP streaming reads the request that opened the stream: the connection is dave's.
    const { first, reader, more } = await openHttpStream(n.url, '{"id":1,"connect":{}}', { 'X-User-Id': 'dave' });
    assert.equal(typeof first.connect?.client, 'string');
    await n.api.disconnect('dave');
    let text = '';
    for (let i = 0; i < 50 && !text.includes('"disconnect"'); i++) text = await more();
    assert.match(text, /"disconnect":\{"code":3503/);
    await reader.cancel().catch(() => undefined);
  } finally {
    await n.close();
  }
  assert.throws(() => loadConfig({ values: { client: { user_id_http_header: 'bad header' } } }), /client\.user_id_http_header/);
});

test('client.user_id_http_header with the connect proxy: the proxy is asked and its result wins, as in Centrifugo', async () => {
  const seen: string[] = [];
  const backend = await startBackend(() => ({ result: { user: 'from-proxy' } }), []);
  const n = await startNode({
    client: { user_id_http_header: 'X-User-Id', proxy: { connect: { endpoint: `${backend.url}/connect` } } },
    channel: { namespaces: [{ name: 'room', allow_subscribe_for_client: true, presence: true }] },
  });
  try {
    const raw = await RawClient.open(n.wsUrl, { ws: { headers: { 'X-User-Id': 'from-header' } } });
    await raw.call('connect', {});
    await raw.call('subscribe', { channel: 'room:p' });
    const presence = (await n.api.call('presence', { channel: 'room:p' })) as { presence: Record<string, { user: string }> };
    for (const entry of Object.values(presence.presence)) seen.push(entry.user);
    assert.deepEqual(seen, ['from-proxy']);
    raw.ws.close();
  } finally {
    await n.close();
    backend.close();
  }
});

/** A raw HTTP-stream request with the given header lines; resolves with what the stream first sends. */
async function openRawHttp(port: number, headerLines: string[]): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const body = '{"id":1,"connect":{}}';
    let text = '';
    const timer = setTimeout(() => (sock.destroy(), resolve(text)), 3000);
    sock.on('error', reject);
    sock.on('data', (d) => {
      text += d.toString('utf8');
      if (text.includes('"disconnect"') || text.includes('"connect"')) {
        clearTimeout(timer);
        sock.destroy();
        resolve(text);
      }
    });
    sock.write(`POST /connection/http_stream HTTP/1.1\r\nHost: 127.0.0.1\r\n${headerLines.join('\r\n')}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
}
