// channel_regex (Centrifugo's namespace option): the channel names a client may use in a namespace.
// The part after the namespace must match (the whole name without a namespace); a client's
// subscribe, publish, history, presence and presence_stats with another name get 107 before any
// permission is looked at; the server API is not checked.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/index.js';
import { client, once, openNamespace, sign, startNode, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';

let node: TestNode;
const everything = {
  allow_publish_for_client: true,
  allow_history_for_client: true,
  allow_presence_for_client: true,
  presence: true,
  history_size: 10,
  history_ttl: '60s',
};
before(async () => {
  node = await startNode({
    channel: {
      without_namespace: { allow_subscribe_for_client: true, channel_regex: '^[a-z]+$' },
      namespaces: [
        openNamespace('ids', { ...everything, channel_regex: '^[0-9]+$' }),
        openNamespace('loose', { channel_regex: '[0-9]' }),
        // Nested repetition: exponential for a backtracking engine on a name that almost matches.
        openNamespace('slug', { ...everything, channel_regex: '^([a-z0-9]+-?)*$' }),
      ],
    },
  });
});
after(() => node.close());

async function raw(): Promise<RawClient> {
  const c = await RawClient.open(node.wsUrl);
  await c.connect({ token: await userToken('r1') });
  return c;
}

const code = (reply: Record<string, any>) => reply.error?.code as number | undefined;

test('subscribe: a name the regex allows is subscribed, another gets 107; an unknown namespace is 102 first', async () => {
  const c = await raw();
  assert.equal(code(await c.call('subscribe', { channel: 'ids:42' })), undefined);
  assert.equal(code(await c.call('subscribe', { channel: 'ids:abc' })), 107);
  assert.equal(code(await c.call('subscribe', { channel: 'ids:4x2' })), 107, 'anchored by the expression');
  assert.equal(code(await c.call('subscribe', { channel: 'nope:abc' })), 102);
  // The private prefix is not part of the name matched: `$ids:7` passes the regex, then needs a token.
  assert.equal(code(await c.call('subscribe', { channel: '$ids:7' })), 103);
  assert.equal(code(await c.call('subscribe', { channel: '$ids:x' })), 107);
  // A token does not get past the name check.
  const token = await sign({ sub: 'r1', channel: 'ids:abc' });
  assert.equal(code(await c.call('subscribe', { channel: 'ids:abc', token })), 107);
  // Without an anchor, a name containing a match is allowed; without a namespace, the whole name is matched.
  assert.equal(code(await c.call('subscribe', { channel: 'loose:a1b' })), undefined);
  assert.equal(code(await c.call('subscribe', { channel: 'loose:ab' })), 107);
  assert.equal(code(await c.call('subscribe', { channel: 'news' })), undefined);
  assert.equal(code(await c.call('subscribe', { channel: 'news1' })), 107);
  c.close();
});

test('publish, history, presence and presence_stats with a refused name: 107; with an allowed one they work', async () => {
  const c = await raw();
  for (const method of ['publish', 'history', 'presence', 'presence_stats']) {
    const body = method === 'publish' ? { data: { x: 1 } } : {};
    assert.equal(code(await c.call(method, { channel: 'ids:abc', ...body })), 107, method);
    assert.equal(code(await c.call(method, { channel: 'ids:1', ...body })), undefined, method);
  }
  c.close();
});

test('centrifuge-js: a subscription to a refused name ends unsubscribed with 107; the server API is not checked', async () => {
  const c = client(node, { token: await userToken('r2') });
  const sub = c.newSubscription('ids:abc');
  const unsubscribed = once<{ code: number }>(sub, 'unsubscribed');
  sub.subscribe();
  c.connect();
  assert.equal((await unsubscribed).code, 107);
  c.disconnect();
  assert.ok(await node.api.publish('ids:abc', { from: 'backend' }));
});

test('an expression runs in linear time (RE2): a name built to make a backtracking engine take hours is answered at once', async () => {
  const c = await raw();
  const name = `slug:${'a'.repeat(60)}!`;
  for (const method of ['subscribe', 'publish', 'presence_stats']) {
    const body = method === 'publish' ? { data: 1 } : {};
    assert.equal(code(await c.call(method, { channel: name, ...body }, 2000)), 107, method);
  }
  assert.equal(code(await c.call('subscribe', { channel: 'slug:my-room-2' })), undefined);
  c.close();
});

test('an invalid channel_regex, or one RE2 does not run (backreferences, lookaround), is a config error naming the key', () => {
  for (const channel_regex of ['(', '(a)\\1', '^(?=a)a$']) {
    assert.throws(
      () => loadConfig({ values: { channel: { namespaces: [{ name: 'a', channel_regex }] } } as never }),
      /channel\.namespaces\.0\.channel_regex: must be a regular expression in RE2 syntax/,
      channel_regex,
    );
  }
});

test("Go's syntax, as Centrifugo configurations are written: counted repetition, \\A and \\z, Unicode classes, (?i)", async () => {
  const go = await startNode({
    channel: {
      namespaces: [
        openNamespace('slug64', { channel_regex: '^[a-z0-9_-]{1,64}$' }),
        openNamespace('az', { channel_regex: '\\A[a-z]+\\z' }),
        openNamespace('letters', { channel_regex: '^\\pL+$' }),
        openNamespace('ci', { channel_regex: '(?i)^room$' }),
      ],
    },
  });
  try {
    const c = await RawClient.open(go.wsUrl);
    await c.connect({ token: await userToken('g1') });
    const cases: Array<[string, number | undefined]> = [
      [`slug64:${'a'.repeat(64)}`, undefined],
      [`slug64:${'a'.repeat(65)}`, 107],
      ['az:abc', undefined],
      ['az:Aabcz', 107],
      ['letters:été', undefined],
      ['letters:e1', 107],
      ['ci:ROOM', undefined],
    ];
    for (const [channel, want] of cases) assert.equal(code(await c.call('subscribe', { channel })), want, channel);
    c.close();
  } finally {
    await go.close();
  }
});
