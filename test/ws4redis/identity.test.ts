// Identity without Django's database: an identity hook served by the test (cookies and headers in,
// identities out, refusals, timeouts, errors, malformed answers) and signed tokens. A refused or
// failed identity is an HTTP refusal of the upgrade with a log line, never an open socket.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { createHerald, loadConfig, type Herald, type HeraldConfigInput } from '../../src/index.js';
import { sign, testConfig } from '../helpers/herald.js';
import { freePort, RedisProcess, useRedis } from '../helpers/redis.js';
import { IdentityHook, json, rawHttp, sleep, W4RClient, WAIT, waitSubscribed, wsUrl, type HookCall } from './helpers.js';

let redis: RedisProcess;
let client: Redis;

useRedis((r, c) => {
  redis = r;
  client = c;
});

/** A node on the test Redis whose log lines are kept. */
async function startLogged(ws4redis: NonNullable<HeraldConfigInput['ws4redis']>): Promise<{ herald: Herald; port: number; logs: Array<Record<string, unknown>> }> {
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const config = loadConfig({ values: testConfig({ engine: { type: 'redis', redis: { url: redis.url } }, ws4redis: { enabled: true, ...ws4redis } }) });
  const herald = createHerald({ config, logger });
  await herald.start();
  return { herald, port: herald.port, logs };
}

/** The Redis channels subscribed to now, Herald's own control channel left out. */
async function channels(): Promise<string[]> {
  return ((await client.pubsub('CHANNELS', '*')) as string[]).filter((c) => !c.startsWith('herald.'));
}

/** Resolves with the HTTP status of a refused upgrade (fails when the socket opens). */
async function refusal(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  try {
    const c = await W4RClient.open(url, { headers });
    c.ws.terminate();
  } catch (err) {
    const e = err as { status?: number; body?: string };
    if (e.status) return { status: e.status, body: e.body ?? '' };
    throw err;
  }
  assert.fail(`upgrade of ${url} was accepted`);
}

const SESSIONS: Record<string, { user: string | null; groups?: string[]; session: string }> = {
  'john-session': { user: 'john', groups: ['chatters'], session: 'john-session' },
  'anon-session': { user: null, session: 'anon-session' },
};

test('identity hook: told the path and facility Herald serves, percent-decoded; a facility with "." or ".." segments is refused (400) without asking it', async () => {
  await client.flushall();
  const hook = await IdentityHook.start((call: HookCall, res) => {
    // The check a hook makes, as the Django view in docs/ws4redis.md makes it.
    if ((call.body.path as string).startsWith('/ws/staff/')) return json(res, 403, {});
    json(res, 200, { user: 'u', channels: call.body.channels });
  });
  const node = await startLogged({ identity_hook: { url: hook.url } });
  try {
    const c = await W4RClient.open(`ws://127.0.0.1:${node.port}/ws/%74eam/pay%20roll?subscribe-broadcast`);
    assert.equal(hook.calls[0]!.body.path, '/ws/team/pay roll');
    assert.equal(hook.calls[0]!.body.facility, 'team/pay roll');
    await waitSubscribed(client, ['broadcast:team/pay roll']);
    await c.close();
    assert.equal((await refusal(`ws://127.0.0.1:${node.port}/ws/%73taff/payroll?subscribe-broadcast`)).status, 403, 'an encoded name is checked decoded');
    const asked = hook.calls.length;
    const upgrade = (path: string) =>
      `GET ${path}?subscribe-broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    for (const path of ['/ws/x/../staff/payroll', '/ws/x/%2e%2e/staff/payroll', '/ws/./staff/payroll', '/ws/staff/%2E/payroll', '/ws/x/%2E%2E']) {
      const answer = await rawHttp(node.port, upgrade(path));
      assert.equal(answer.status, 400, path);
      assert.match(answer.body, /segments/);
    }
    assert.equal(hook.calls.length, asked, 'the hook was not asked about a refused path');
  } finally {
    await node.herald.close();
    await hook.stop();
  }
});

test('identity hook: cookie and headers in, identity out; channels narrowed by its answer; called on every upgrade', async () => {
  await client.flushall();
  const hook = await IdentityHook.start((call: HookCall, res) => {
    const sid = /sessionid=([^;]+)/.exec(call.headers.cookie ?? '')?.[1] ?? '';
    const who = SESSIONS[sid];
    if (!who) return json(res, 403, { error: 'not logged in' });
    const channels = call.body.path === '/ws/narrow' ? ['subscribe-broadcast'] : call.body.channels;
    json(res, 200, { user: who.user, groups: who.groups ?? [], session: who.session, channels });
  });
  const node = await startLogged({
    allowed_channels: ['subscribe-broadcast', 'subscribe-user', 'subscribe-group', 'subscribe-session'],
    identity_hook: { url: hook.url },
  });
  try {
    const cookie = 'csrftoken=abc; sessionid=john-session; theme="dark blue"';
    const query = 'subscribe-broadcast&Subscribe-User=1&%20subscribe-group&subscribe-session&publish-user&x=%20y';
    const john = await W4RClient.open(`ws://127.0.0.1:${node.port}/ws/foo?${query}`, {
      headers: { Cookie: cookie, 'X-Forwarded-For': '203.0.113.9' },
      protocols: ['chat'],
    });
    const call = hook.calls[0]!;
    assert.equal(call.method, 'POST');
    assert.equal(call.headers.cookie, cookie, 'the Cookie header is forwarded verbatim');
    assert.equal(call.headers['content-type'], 'application/json');
    assert.deepEqual(Object.keys(call.body).sort(), ['channels', 'facility', 'headers', 'path', 'query']);
    assert.equal(call.body.path, '/ws/foo');
    assert.equal(call.body.facility, 'foo');
    assert.equal(call.body.query, query);
    assert.deepEqual(call.body.channels, ['subscribe-broadcast', 'subscribe-user', 'subscribe-group', 'subscribe-session', 'publish-user']);
    const h = call.body.headers as Record<string, string>;
    assert.equal(h.cookie, cookie);
    assert.equal(h['x-forwarded-for'], '203.0.113.9');
    assert.equal(h['sec-websocket-protocol'], 'chat');
    assert.equal(h.upgrade, 'websocket');
    assert.equal(h.host, `127.0.0.1:${node.port}`);
    assert.ok(Object.keys(h).every((k) => k === k.toLowerCase()));

    // publish-user was asked for but is not allowed by the config: dropped, the rest kept.
    const johns = ['broadcast:foo', 'group:chatters:foo', 'user:john:foo', 'session:john-session:foo'];
    await waitSubscribed(client, johns);
    assert.deepEqual((await channels()).sort(), [...johns].sort());
    for (const ch of johns) await client.publish(ch, `to ${ch}`);
    await john.waitCount(4);
    assert.deepEqual(john.texts, johns.map((ch) => `to ${ch}`));
    await john.close();

    // Anonymous with a session: no user channel (no `user::foo`), a session channel.
    const anon = await W4RClient.open(wsUrl(node, 'foo', 'subscribe-user&subscribe-session'), { headers: { Cookie: 'sessionid=anon-session' } });
    await waitSubscribed(client, ['session:anon-session:foo']);
    assert.deepEqual(await channels(), ['session:anon-session:foo']);
    await anon.close();

    // The hook's `channels` answer narrows what the config allows.
    const narrow = await W4RClient.open(wsUrl(node, 'narrow', 'subscribe-broadcast&subscribe-user'), { headers: { Cookie: 'sessionid=john-session' } });
    await waitSubscribed(client, ['broadcast:narrow']);
    await sleep(50);
    assert.deepEqual(await channels(), ['broadcast:narrow']);
    await narrow.close();

    // 403 from the hook: a 403 refusal of the upgrade, and a log line.
    assert.equal((await refusal(wsUrl(node, 'foo', 'subscribe-user'), { Cookie: 'sessionid=stolen' })).status, 403);
    assert.equal((await refusal(wsUrl(node, 'foo', 'subscribe-user'))).status, 403);
    assert.equal(hook.calls.length, 5);
    assert.ok(node.logs.some((l) => l.msg === 'ws4redis upgrade refused' && l.status === 403 && /refused the connection \(403\)/.test(String(l.reason))));
  } finally {
    await node.herald.close();
    await hook.stop();
  }
});

test('identity hook failures refuse the upgrade with a clear status: timeout 504, errors and malformed answers 502', async () => {
  const answers: Record<string, (res: import('node:http').ServerResponse) => void> = {
    slow: (res) => void setTimeout(() => json(res, 200, { user: 'late' }), 3_000),
    error: (res) => json(res, 500, 'boom'),
    redirect: (res) => void res.writeHead(302, { Location: '/accounts/login/' }).end(),
    notjson: (res) => json(res, 200, '<html>login</html>'),
    baduser: (res) => json(res, 200, { user: { name: 'john' } }),
    badgroups: (res) => json(res, 200, { user: 'john', groups: 'chatters' }),
    badchannels: (res) => json(res, 200, { user: 'john', channels: 'subscribe-user' }),
    unauthorized: (res) => json(res, 401, {}),
    fine: (res) => json(res, 200, { user: 'john' }),
  };
  const hook = await IdentityHook.start((call, res) => answers[call.body.path.slice('/ws/'.length)]!(res));
  // A timeout long enough for a hook's prompt answers on a loaded machine, shorter than the slow one's.
  const node = await startLogged({ identity_hook: { url: hook.url, timeout: '1s' } });
  const deadPort = await freePort();
  const dead = await startLogged({ identity_hook: { url: `http://127.0.0.1:${deadPort}/identity` } });
  try {
    const status = async (facility: string) => (await refusal(wsUrl(node, facility, 'subscribe-broadcast'))).status;
    const started = Date.now();
    assert.equal(await status('slow'), 504);
    assert.ok(Date.now() - started < 2_500, 'the timeout applies');
    assert.equal(await status('error'), 502);
    assert.equal(await status('redirect'), 502);
    assert.equal(await status('notjson'), 502);
    assert.equal(await status('baduser'), 502);
    assert.equal(await status('badgroups'), 502);
    assert.equal(await status('badchannels'), 502);
    assert.equal(await status('unauthorized'), 403);
    assert.equal((await refusal(wsUrl(dead, 'any', 'subscribe-broadcast'))).status, 502);
    const reasons = node.logs.filter((l) => l.msg === 'ws4redis upgrade refused').map((l) => `${l.status} ${l.reason}`);
    assert.deepEqual(reasons, [
      '504 identity hook did not answer within 1000 ms',
      '502 identity hook answered 500 (expected 200 or 403)',
      '502 identity hook answered 302 (expected 200 or 403)',
      '502 identity hook answer malformed: not JSON',
      '502 identity hook answer malformed: "user" must be a string or null',
      '502 identity hook answer malformed: "groups" must be a list of strings',
      '502 identity hook answer malformed: "channels" must be a list of strings',
      '403 identity hook refused the connection (401)',
    ]);
    assert.match(String(dead.logs.find((l) => l.msg === 'ws4redis upgrade refused')?.reason), /identity hook unreachable: ECONNREFUSED/);
    assert.ok(node.logs.filter((l) => l.status === 504 || l.status === 502).every((l) => l.level === 40), 'hook failures are warnings');
    // The node keeps serving.
    const ok = await W4RClient.open(wsUrl(node, 'fine', 'subscribe-broadcast'));
    await ok.close();
  } finally {
    await Promise.all([node.herald.close(), dead.herald.close()]);
    await hook.stop();
  }
});

test('signed tokens: user, groups and session claims; a bad or expired token is refused; refuse_anonymous', async () => {
  await client.flushall();
  const node = await startLogged({
    allowed_channels: ['subscribe-user', 'subscribe-group', 'subscribe-session'],
    facilities: [{ facility: 'members*', allowed_channels: ['subscribe-user'], refuse_anonymous: true }],
    token: { query_param: 'jwt', cookie: 'auth' },
  });
  try {
    const token = await sign({ sub: 'ann', groups: ['g1', 42, 'g2'], session: 'sk' }, { expIn: 60 });
    const ann = await W4RClient.open(wsUrl(node, 'f', `subscribe-user&subscribe-group&subscribe-session&jwt=${token}`));
    const expected = ['group:g1:f', 'group:g2:f', 'user:ann:f', 'session:sk:f'];
    await waitSubscribed(client, expected);
    assert.deepEqual((await channels()).sort(), [...expected].sort());
    await ann.close();

    const viaCookie = await W4RClient.open(wsUrl(node, 'members-area', 'subscribe-user&subscribe-group'), { headers: { Cookie: `auth=${token}` } });
    await waitSubscribed(client, ['user:ann:members-area']);
    await sleep(50);
    assert.deepEqual(await channels(), ['user:ann:members-area']);
    await viaCookie.close();

    assert.equal((await refusal(wsUrl(node, 'members-area', 'subscribe-user'))).status, 403);
    assert.equal((await refusal(wsUrl(node, 'f', `subscribe-user&jwt=${token}x`))).status, 403);
    assert.equal((await refusal(wsUrl(node, 'f', `subscribe-user&jwt=${await sign({ sub: 'ann' }, { expIn: -10 })}`))).status, 403);
    assert.equal((await refusal(wsUrl(node, 'f', `subscribe-user&jwt=${await sign({ sub: 'ann' }, { secret: 'another-secret-0123456789' })}`))).status, 403);
    const reasons = node.logs.filter((l) => l.msg === 'ws4redis upgrade refused').map((l) => String(l.reason));
    assert.equal(reasons.length, 4);
    assert.equal(reasons[0], 'anonymous connections are refused on this facility');
    assert.match(reasons[1]!, /^invalid token/);
    assert.equal(reasons[2], 'token expired');
    assert.match(reasons[3]!, /^invalid token: signature verification failed/);

    // Anonymous where allowed: connected, with no channel for the user-only flags.
    const anon = await W4RClient.open(wsUrl(node, 'f', 'subscribe-user&subscribe-session'));
    await sleep(100);
    assert.deepEqual(await channels(), []);
    await anon.close();
  } finally {
    await node.herald.close();
  }
});
