// Publication filtering by tags (Centrifugo's allow_tags_filter): a subscription with a tags filter
// (centrifuge-js `tagsFilter`) is sent only the publications whose tags it matches, live and when
// recovering; filters are checked when subscribing (107), and refused where the namespace does not
// allow them or with delta compression.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { compareDecimals } from '../../src/dialects/native/tags-filter.js';
import { client, once, openNamespace, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep, type Msg } from '../helpers/raw.js';

let node: TestNode;
before(async () => {
  node = await startNode({
    channel: {
      namespaces: [
        openNamespace('tick', { allow_tags_filter: true, allowed_delta_types: ['fossil'] }),
        openNamespace('feed', { allow_tags_filter: true, history_size: 100, history_ttl: '60s', force_recovery: true }),
        openNamespace('latest', { allow_tags_filter: true, history_size: 10, history_ttl: '60s', force_recovery: true, force_recovery_mode: 'cache' }),
        openNamespace('closed'),
      ],
    },
  });
});
after(() => node.close());

const quotes: Array<[string, Record<string, string>]> = [
  ['btc-1', { ticker: 'BTC', price: '50000.5' }],
  ['eth-1', { ticker: 'ETH', price: '3000' }],
  ['none', {}],
  ['btc-2', { ticker: 'BTC', price: '49999.99' }],
  ['sol-1', { ticker: 'SOL', price: '150' }],
  ['btc-3', { ticker: 'BTC', price: '123456789012345678901' }],
];

async function publishAll(channel: string): Promise<void> {
  for (const [id, tags] of quotes) await node.api.publish(channel, { id }, { tags });
}

async function rawSubscribed(channel: string, body: Msg): Promise<{ raw: RawClient; reply: Msg }> {
  const raw = await RawClient.open(node.wsUrl);
  await raw.connect({ token: await userToken('t1') });
  return { raw, reply: await raw.call('subscribe', { channel, ...body }) };
}

test('centrifuge-js with a tagsFilter gets only the publications it matches', async () => {
  const c = client(node, { token: await userToken('t2') });
  const btc = c.newSubscription('tick:js', { tagsFilter: { key: 'ticker', cmp: 'eq', val: 'BTC' } });
  const gotBtc: unknown[] = [];
  btc.on('publication', (ctx) => gotBtc.push(ctx.data));
  btc.subscribe();
  c.connect();
  await btc.ready(3000);
  await publishAll('tick:js');
  await node.api.publish('tick:js', { id: 'end' }, { tags: { ticker: 'BTC' } });
  await until(() => gotBtc.length === 4, 3000, 'the BTC publications');
  await sleep(50);
  assert.deepEqual(gotBtc, [{ id: 'btc-1' }, { id: 'btc-2' }, { id: 'btc-3' }, { id: 'end' }]);
  c.disconnect();
});

test("Centrifugo's comparisons: in, nin, ex, nex, sw, ew, ct, neq, decimal gt/lte, and, or, not", async () => {
  const cases: Array<[Record<string, unknown>, string[]]> = [
    [{ key: 'ticker', cmp: 'in', vals: ['ETH', 'SOL'] }, ['eth-1', 'sol-1']],
    [{ key: 'ticker', cmp: 'nin', vals: ['BTC'] }, ['eth-1', 'none', 'sol-1']],
    [{ key: 'ticker', cmp: 'ex' }, ['btc-1', 'eth-1', 'btc-2', 'sol-1', 'btc-3']],
    [{ key: 'ticker', cmp: 'nex' }, ['none']],
    [{ key: 'ticker', cmp: 'sw', val: 'B' }, ['btc-1', 'btc-2', 'btc-3']],
    [{ key: 'ticker', cmp: 'ew', val: 'H' }, ['eth-1']],
    [{ key: 'ticker', cmp: 'ct', val: 'O' }, ['sol-1']],
    [{ key: 'ticker', cmp: 'neq', val: 'BTC' }, ['eth-1', 'none', 'sol-1']],
    [{ key: 'price', cmp: 'gt', val: '50000' }, ['btc-1', 'btc-3']],
    [{ key: 'price', cmp: 'lte', val: '3000.0' }, ['eth-1', 'sol-1']],
    [{ op: 'and', nodes: [{ key: 'ticker', cmp: 'eq', val: 'BTC' }, { key: 'price', cmp: 'lt', val: '50000' }] }, ['btc-2']],
    [{ op: 'or', nodes: [{ key: 'ticker', cmp: 'eq', val: 'SOL' }, { key: 'price', cmp: 'gte', val: '3000' }] }, ['btc-1', 'eth-1', 'btc-2', 'sol-1', 'btc-3']],
    [{ op: 'not', nodes: [{ key: 'ticker', cmp: 'ex' }] }, ['none']],
  ];
  const subs = await Promise.all(cases.map(([tf], i) => rawSubscribed(`tick:cmp${i}`, { tf })));
  // A subscriber without a filter on every channel: once it has all, the filtered ones have theirs.
  const watcher = await RawClient.open(node.wsUrl);
  await watcher.connect({ token: await userToken('t4') });
  for (const [i] of cases.entries()) await watcher.call('subscribe', { channel: `tick:cmp${i}` });
  for (const [i] of cases.entries()) await publishAll(`tick:cmp${i}`);
  await until(() => cases.every((_, i) => watcher.pushes(`tick:cmp${i}`).length === quotes.length), 5000, 'every publication');
  await sleep(50);
  for (const [i, [tf, want]] of cases.entries()) {
    const { raw, reply } = subs[i]!;
    assert.equal(reply.error, undefined, JSON.stringify(tf));
    assert.deepEqual(
      raw.pushes(`tick:cmp${i}`).map((p) => p.data.id),
      want,
      JSON.stringify(tf),
    );
    raw.close();
  }
  watcher.close();
});

test('filters are checked when subscribing: malformed ones, namespaces without allow_tags_filter and delta compression get 107', async () => {
  const bad: unknown[] = [
    { key: 'a', cmp: 'like', val: 'x' },
    { key: 'a', cmp: 'eq' },
    { key: 'a', cmp: 'in', vals: [] },
    { key: 'a', cmp: 'eq', val: 'x', vals: ['y'] },
    { cmp: 'eq', val: 'x' },
    { op: 'not', nodes: [{ key: 'a', cmp: 'ex' }, { key: 'b', cmp: 'ex' }] },
    { op: 'xor', nodes: [{ key: 'a', cmp: 'ex' }] },
    { op: 'and', nodes: [] },
    { key: 'a', cmp: 'eq', val: 5 },
    JSON.parse(`${'{"op":"not","nodes":['.repeat(16)}{"key":"a","cmp":"ex"}${']}'.repeat(16)}`),
  ];
  // Sixteen levels are accepted (seventeen are not, above).
  const deep = await rawSubscribed('tick:deep', { tf: JSON.parse(`${'{"op":"not","nodes":['.repeat(15)}{"key":"a","cmp":"ex"}${']}'.repeat(15)}`) });
  assert.equal(deep.reply.error, undefined);
  deep.raw.close();
  for (const tf of bad) {
    const { raw, reply } = await rawSubscribed('tick:bad', { tf });
    assert.equal(reply.error?.code, 107, JSON.stringify(tf));
    raw.close();
  }
  const closed = await rawSubscribed('closed:x', { tf: { key: 'a', cmp: 'ex' } });
  assert.equal(closed.reply.error?.code, 107, 'not allowed in the namespace');
  closed.raw.close();
  const withDelta = await rawSubscribed('tick:d', { tf: { key: 'a', cmp: 'ex' }, delta: 'fossil' });
  assert.equal(withDelta.reply.error?.code, 107, 'not with delta compression');
  withDelta.raw.close();
});

test('recovery with a filter: only the matching missed publications, and the stream stays positioned past the others', async () => {
  const c = client(node, { token: await userToken('t3'), minReconnectDelay: 200, maxReconnectDelay: 300 });
  const sub = c.newSubscription('feed:a', { tagsFilter: { key: 'ticker', cmp: 'eq', val: 'BTC' } });
  const got: unknown[] = [];
  const subscribed: Array<{ recovered: boolean }> = [];
  sub.on('publication', (ctx) => got.push(ctx.data));
  sub.on('subscribed', (ctx) => subscribed.push(ctx as { recovered: boolean }));
  sub.subscribe();
  c.connect();
  await sub.ready(3000);
  await node.api.publish('feed:a', { id: 'btc-0' }, { tags: { ticker: 'BTC' } });
  await until(() => got.length === 1);
  const connecting = once(c, 'connecting');
  await node.api.disconnect('t3', { disconnect: { code: 3011, reason: 'reconnect' } });
  await connecting;
  await publishAll('feed:a');
  await until(() => subscribed.length === 2, 5000, 'resubscribed');
  assert.equal(subscribed[1]!.recovered, true);
  // Live ones after non-matching ones: no gap is seen (the subscription is not made to recover again).
  await node.api.publish('feed:a', { id: 'eth-2' }, { tags: { ticker: 'ETH' } });
  await node.api.publish('feed:a', { id: 'btc-4' }, { tags: { ticker: 'BTC' } });
  await until(() => got.length === 5, 3000, 'the BTC publications');
  await sleep(50);
  assert.deepEqual(got, [{ id: 'btc-0' }, { id: 'btc-1' }, { id: 'btc-2' }, { id: 'btc-3' }, { id: 'btc-4' }]);
  assert.equal(subscribed.length, 2, 'no resubscribe for the publications held back');
  c.disconnect();
});

test('cache-mode recovery with a filter: the latest publication the filter matches; none matching: not recovered', async () => {
  await node.api.publish('latest:a', { id: 'btc' }, { tags: { ticker: 'BTC' } });
  await node.api.publish('latest:a', { id: 'eth' }, { tags: { ticker: 'ETH' } });
  const btc = await rawSubscribed('latest:a', { tf: { key: 'ticker', cmp: 'eq', val: 'BTC' }, recover: true, offset: 0, epoch: '' });
  assert.equal(btc.reply.subscribe.recovered, true);
  assert.deepEqual(
    (btc.reply.subscribe.publications as Msg[]).map((p) => p.data),
    [{ id: 'btc' }],
  );
  btc.raw.close();
  const none = await rawSubscribed('latest:a', { tf: { key: 'ticker', cmp: 'eq', val: 'SOL' }, recover: true, offset: 0, epoch: '' });
  assert.equal(none.reply.subscribe.recovered, undefined, 'nothing to recover from: not recovered');
  assert.equal(none.reply.subscribe.publications, undefined);
  none.raw.close();
});

test('a payload no JSON client can be sent closes only the subscriptions it would be sent to (3506), live and in recovery', async () => {
  const notJson = Buffer.from('not json').toString('base64');
  const btc = await rawSubscribed('tick:bin', { tf: { key: 'ticker', cmp: 'eq', val: 'BTC' } });
  await node.api.call('publish', { channel: 'tick:bin', b64data: notJson, tags: { ticker: 'ETH' } });
  await node.api.publish('tick:bin', { id: 'btc' }, { tags: { ticker: 'BTC' } });
  await btc.raw.waitFor((m) => m.push?.pub?.data?.id === 'btc');
  assert.equal(btc.raw.closeInfo, undefined, 'held back by the filter: not a reason to close');
  await node.api.call('publish', { channel: 'tick:bin', b64data: notJson, tags: { ticker: 'BTC' } });
  assert.equal((await btc.raw.waitClose()).code, 3506);
  // Recovering past a non-JSON publication the filter holds back.
  const first = await rawSubscribed('feed:bin', {});
  await node.api.call('publish', { channel: 'feed:bin', b64data: notJson, tags: { ticker: 'ETH' } });
  await node.api.publish('feed:bin', { id: 'btc' }, { tags: { ticker: 'BTC' } });
  first.raw.close();
  const again = await rawSubscribed('feed:bin', { tf: { key: 'ticker', cmp: 'eq', val: 'BTC' }, recover: true, offset: 0, epoch: first.reply.subscribe.epoch });
  assert.deepEqual(
    (again.reply.subscribe.publications as Msg[]).map((p) => p.data),
    [{ id: 'btc' }],
  );
  again.raw.close();
});

test('API publish: tags must be an object of strings (107 otherwise)', async () => {
  for (const tags of ['str', ['x'], 5, { a: 1 }]) {
    const r = await fetch(`${node.url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': 'test-api-key' }, body: JSON.stringify({ channel: 'tick:t', data: 1, tags }) });
    assert.equal(((await r.json()) as { error?: { code: number } }).error?.code, 107, JSON.stringify(tags));
  }
});

test('decimal comparison is exact: signs, trailing zeros, integers past 2^53; not a number: no match', () => {
  assert.equal(compareDecimals('10', '9'), 1);
  assert.equal(compareDecimals('-1.50', '-1.5'), 0);
  assert.equal(compareDecimals('-2', '-1.5'), -1);
  assert.equal(compareDecimals('0.1', '0.10001'), -1);
  assert.equal(compareDecimals('-0', '0.0'), 0);
  assert.equal(compareDecimals('12345678901234567890', '12345678901234567891'), -1);
  assert.equal(compareDecimals('007', '7'), 0);
  assert.equal(compareDecimals('1e9', '5'), undefined);
  assert.equal(compareDecimals('abc', '5'), undefined);
});
