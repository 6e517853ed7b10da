// Stream positions and recovery on the wire (raw ws): the subscribe result fields of a recovery,
// epochs, trimming, the recovery limit, reject-unrecovered (flag 2), cache mode, and ordering of
// the subscribe reply against live publications arriving during the recovery.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openNamespace, startNode, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, type Msg } from '../helpers/raw.js';

let node: TestNode;
const stream = (name: string, size: number, extra = {}) =>
  openNamespace(name, { history_size: size, history_ttl: '60s', force_recovery: true, ...extra });
before(async () => {
  node = await startNode({
    channel: {
      namespaces: [
        stream('rec', 1000),
        stream('short', 3),
        stream('cache', 1, { force_recovery_mode: 'cache' }),
        openNamespace('pos', { history_size: 10, history_ttl: '60s', force_positioning: true }),
      ],
    },
  });
});
after(() => node.close());

async function raw(): Promise<RawClient> {
  const r = await RawClient.open(node.wsUrl);
  await r.connect({ token: await userToken('alice') });
  return r;
}

async function publishN(channel: string, n: number, from = 1): Promise<{ offset: number; epoch: string }> {
  let last = { offset: 0, epoch: '' };
  for (let i = from; i < from + n; i++) last = (await node.herald.publish(channel, { i })) as { offset: number; epoch: string };
  return last;
}

async function subscribe(r: RawClient, body: Msg): Promise<Msg> {
  const reply = await r.call('subscribe', body);
  assert.equal(reply.error, undefined, JSON.stringify(reply.error));
  return reply.subscribe;
}

test('recovering from an offset: the missed publications, the client offset, recovered and was_recovering', async () => {
  const top = await publishN('rec:a', 6);
  const r = await raw();
  const res = await subscribe(r, { channel: 'rec:a', recover: true, offset: 2, epoch: top.epoch });
  assert.equal(res.recovered, true);
  assert.equal(res.was_recovering, true);
  assert.equal(res.recoverable, true);
  assert.equal(res.positioned, true);
  assert.equal(res.epoch, top.epoch);
  assert.equal(res.offset, 2, "the client's offset: the publications advance it");
  assert.deepEqual(res.publications.map((p: Msg) => p.offset), [3, 4, 5, 6]);
  assert.deepEqual(res.publications.map((p: Msg) => p.data), [3, 4, 5, 6].map((i) => ({ i })));
  // Live publications continue right after.
  await node.api.publish('rec:a', { i: 7 });
  const push = await r.waitFor((m) => m.push?.channel === 'rec:a');
  assert.equal(push.push.pub.offset, 7);
  r.close();
});

test('recovering at the top: recovered, nothing sent; epoch absent reads as ""', async () => {
  const top = await publishN('rec:b', 3);
  const r = await raw();
  const res = await subscribe(r, { channel: 'rec:b', recover: true, offset: 3, epoch: top.epoch });
  assert.equal(res.recovered, true);
  assert.equal('publications' in res, false);
  assert.equal(res.offset, 3);
  const noEpoch = await subscribe(r, { channel: 'rec:b2', recover: true });
  assert.equal(noEpoch.recovered, true, 'offset 0 on an empty stream: nothing missed');
  await publishN('rec:c', 4);
  const fromStart = await subscribe(r, { channel: 'rec:c', recover: true });
  assert.equal(fromStart.recovered, true);
  assert.deepEqual(fromStart.publications.map((p: Msg) => p.offset), [1, 2, 3, 4]);
  r.close();
});

test('not recoverable: another epoch, trimmed history, offset past the top, over the recovery limit', async () => {
  const a = await publishN('rec:d', 5);
  await publishN('short:d', 8);
  await publishN('rec:e', 310);
  const r = await raw();
  const cases: Array<[Msg, number]> = [
    [{ channel: 'rec:d', recover: true, offset: 2, epoch: 'abcdefgh' }, 5],
    [{ channel: 'short:d', recover: true, offset: 1 }, 8],
    [{ channel: 'rec:d2', recover: true, offset: 50, epoch: '' }, 0],
    [{ channel: 'rec:e', recover: true, offset: 2 }, 310], // 308 missed: over the limit of 300
  ];
  for (const [body, topOffset] of cases) {
    const res = await subscribe(r, body);
    assert.equal(res.recovered ?? false, false, JSON.stringify(body));
    assert.equal(res.was_recovering, true);
    assert.equal('publications' in res, false, 'no partial recovery');
    assert.equal(res.offset ?? 0, topOffset, 'the top of the stream');
    assert.match(res.epoch, /^[a-zA-Z]{8}$/);
  }
  assert.notEqual(a.epoch, 'abcdefgh');
  r.close();
});

test('flag bit 2 (reject unrecovered): error 112 instead of recovered false; recoverable is unaffected', async () => {
  const top = await publishN('short:f', 8);
  const r = await raw();
  const reply = await r.call('subscribe', { channel: 'short:f', recover: true, offset: 1, epoch: top.epoch, flag: 3 });
  assert.deepEqual(reply.error, { code: 112, message: 'unrecoverable position' });
  const ok = await subscribe(r, { channel: 'short:f', recover: true, offset: 7, epoch: top.epoch, flag: 3 });
  assert.equal(ok.recovered, true);
  assert.deepEqual(ok.publications.map((p: Msg) => p.offset), [8]);
  r.close();
});

test('cache mode: only the latest publication comes back', async () => {
  const top = await publishN('cache:a', 5);
  const r = await raw();
  const res = await subscribe(r, { channel: 'cache:a', recover: true, offset: 1, epoch: top.epoch });
  assert.equal(res.recovered, true);
  assert.deepEqual(res.publications.map((p: Msg) => p.data), [{ i: 5 }]);
  const had = await subscribe(r, { channel: 'cache:a2', recover: true, offset: 0 });
  assert.equal(had.recovered ?? false, false, 'no latest publication and no position: not recovered');
  await r.call('unsubscribe', { channel: 'cache:a' });
  const upToDate = await subscribe(r, { channel: 'cache:a', recover: true, offset: 5, epoch: top.epoch });
  assert.equal(upToDate.recovered, true);
  assert.equal('publications' in upToDate, false, 'the client has the latest already');
  r.close();
});

test('positioning without recovery: position fields, recover ignored', async () => {
  await publishN('pos:a', 2);
  const r = await raw();
  const res = await subscribe(r, { channel: 'pos:a', recover: true, offset: 1 });
  assert.equal(res.positioned, true);
  assert.equal(res.offset, 2);
  assert.equal('recoverable' in res, false);
  assert.equal('publications' in res, false);
  await node.api.publish('pos:a', { i: 3 });
  assert.equal((await r.waitFor((m) => m.push?.channel === 'pos:a')).push.pub.offset, 3);
  r.close();
});

test('publications during a recovery: reply first, then every offset exactly once and in order', async () => {
  const channel = 'rec:live';
  const first = await publishN(channel, 50);
  const total = 380;
  let published = 50;
  const r = await raw();
  const publisher = (async () => {
    for (let i = 51; i <= total; i++) {
      await node.herald.publish(channel, { i });
      published = i;
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  while (published < 120) await new Promise((resolve) => setImmediate(resolve));
  const id = r.id();
  r.send({ id, subscribe: { channel, recover: true, offset: 100, epoch: first.epoch } });
  await publisher;
  await r.waitFor((m) => m.push?.channel === channel && m.push.pub.offset === total, 5000, 'the last publication');
  const replyIndex = r.messages.findIndex((m) => m.id === id);
  const firstPush = r.messages.findIndex((m) => m.push?.channel === channel);
  assert.ok(replyIndex >= 0 && replyIndex < firstPush, 'the subscribe reply comes before any publication push');
  const reply = r.messages[replyIndex]!.subscribe;
  assert.equal(reply.recovered, true);
  const offsets = [...(reply.publications ?? []).map((p: Msg) => p.offset), ...r.pushes(channel).map((p) => p.offset)];
  assert.deepEqual(offsets, Array.from({ length: total - 100 }, (_, i) => 101 + i));
  assert.equal(r.messages.some((m) => m.push?.unsubscribe), false, 'no insufficient-state resubscribe needed');
  r.close();
});
