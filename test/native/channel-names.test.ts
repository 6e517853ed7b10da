// How channel names are read, configurable as in Centrifugo: channel.private_prefix ($),
// namespace_boundary (:), user_boundary (#) and user_separator (,); each off when empty.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/index.js';
import { openNamespace, sign, startNode, userToken } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';

const code = (reply: Record<string, any>) => reply.error?.code as number | undefined;

test('other boundaries: "/" splits the namespace, "!" marks private channels, "@" and ";" user-limited ones and the personal channel', async () => {
  const node = await startNode({
    client: { subscribe_to_user_personal_channel: { enabled: true, personal_channel_namespace: 'me' } },
    channel: {
      private_prefix: '!',
      namespace_boundary: '/',
      user_boundary: '@',
      user_separator: ';',
      namespaces: [openNamespace('chat'), { name: 'dm', allow_user_limited_channels: true }, { name: 'me' }],
    },
  });
  try {
    const c = await RawClient.open(node.wsUrl);
    const connected = await c.connect({ token: await userToken('alice') });
    assert.deepEqual(Object.keys(connected.subs ?? {}), ['me/@alice'], 'the personal channel');
    assert.equal(code(await c.call('subscribe', { channel: 'chat/1' })), undefined);
    assert.equal(code(await c.call('subscribe', { channel: 'chat:1' })), 103, 'no namespace: without_namespace, closed');
    assert.equal(code(await c.call('subscribe', { channel: 'nope/1' })), 102);
    assert.equal(code(await c.call('subscribe', { channel: '!chat/1' })), 103, 'private: a token is needed');
    const token = await sign({ sub: 'alice', channel: '!chat/1' });
    assert.equal(code(await c.call('subscribe', { channel: '!chat/1', token })), undefined);
    assert.equal(code(await c.call('subscribe', { channel: '$chat/1' })), 102, '"$" is no prefix here: namespace "$chat"');
    assert.equal(code(await c.call('subscribe', { channel: 'dm/@bob;alice' })), undefined);
    assert.equal(code(await c.call('subscribe', { channel: 'dm/@bob;carol' })), 103);
    c.close();
  } finally {
    await node.close();
  }
});

test('empty boundaries turn each rule off: no private prefix, no namespaces, one user per user-limited channel', async () => {
  const node = await startNode({
    channel: {
      private_prefix: '',
      namespace_boundary: '',
      user_separator: '',
      without_namespace: { allow_subscribe_for_client: true, allow_user_limited_channels: true },
    },
  });
  try {
    const c = await RawClient.open(node.wsUrl);
    await c.connect({ token: await userToken('alice') });
    assert.equal(code(await c.call('subscribe', { channel: '$open' })), undefined);
    assert.equal(code(await c.call('subscribe', { channel: 'a:b' })), undefined);
    assert.equal(code(await c.call('subscribe', { channel: 'x#alice' })), undefined);
    assert.equal(code(await c.call('subscribe', { channel: 'y#alice,bob' })), 103, 'the whole suffix is the one user');
    c.close();
  } finally {
    await node.close();
  }
});

test('config errors: a namespace name containing the boundary; a personal channel namespace without a boundary; the demo with another boundary', () => {
  assert.throws(
    () => loadConfig({ values: { channel: { namespace_boundary: '.', namespaces: [{ name: 'a.b' }] } } }),
    /channel\.namespaces\.0\.name: must not contain namespace_boundary "\."/,
  );
  assert.throws(
    () =>
      loadConfig({
        values: { client: { subscribe_to_user_personal_channel: { enabled: true, personal_channel_namespace: 'me' } }, channel: { namespace_boundary: '', namespaces: [{ name: 'me' }] } },
      }),
    /client\.subscribe_to_user_personal_channel\.personal_channel_namespace: needs channel\.namespace_boundary/,
  );
  assert.throws(() => loadConfig({ values: { demo: { enabled: true }, channel: { namespace_boundary: '/' } } }), /demo\.enabled: the demo pages name channels/);
  // Without its namespaces the demo could only fail every publish: refused at load, saying so.
  assert.throws(() => loadConfig({ values: { demo: { enabled: true }, channel: { namespaces: [{ name: 'jobs' }] } } }), /demo\.enabled: the demo publishes to the namespaces "jobs" and "dashboard" \(missing: dashboard\)/);
});

test('channel names are measured in bytes against max_length, as Centrifugo counts them', async () => {
  const node = await startNode({ channel: { max_length: 10, without_namespace: { allow_subscribe_for_client: true } } });
  try {
    const c = await RawClient.open(node.wsUrl);
    await c.connect({ token: await userToken('alice') });
    assert.equal(code(await c.call('subscribe', { channel: 'новости' })), 106, '7 characters, 14 bytes');
    assert.equal(code(await c.call('subscribe', { channel: 'ново' })), undefined, '8 bytes');
    c.close();
  } finally {
    await node.close();
  }
});
