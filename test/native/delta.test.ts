// Fossil delta compression: negotiated per subscription where the namespace allows it, publications
// as strings (full, or a delta against what the subscription was sent last), decoded by
// centrifuge-js into exactly what was published; recovery continues the chain; a delta that would
// not be text (a multi-byte character split) or not shorter goes in full.
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { after, before, test } from 'node:test';
import type { Subscription } from 'centrifuge';
import { applyDelta, createDelta } from 'fossil-delta';
import { deltaCounts } from '../../src/dialects/native/delta.js';
import { client, collect, openNamespace, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep, type Msg } from '../helpers/raw.js';

let node: TestNode;
const history = { history_size: 100, history_ttl: '60s' };
before(async () => {
  node = await startNode({
    channel: {
      namespaces: [
        openNamespace('dz', { allowed_delta_types: ['fossil'], delta_publish: true }),
        openNamespace('flag', { allowed_delta_types: ['fossil'] }),
        openNamespace('plain', { delta_publish: true }),
        openNamespace('rec', { ...history, force_recovery: true, allowed_delta_types: ['fossil'], delta_publish: true }),
      ],
    },
  });
});
after(() => node.close());

/** A scoreboard of 40 rows, one of them changed per step: a payload a delta shrinks well. */
const board = (step: number, label = 'team') => ({
  step,
  rows: Array.from({ length: 40 }, (_, i) => ({ name: `${label} ${i}`, score: i === step % 40 ? step * 10 : i })),
});

async function rawSubscribed(channel: string, body: Msg = {}): Promise<{ raw: RawClient; result: Msg }> {
  const raw = await RawClient.open(node.wsUrl);
  await raw.connect({ token: await userToken('d1') });
  const reply = await raw.call('subscribe', { channel, ...body });
  assert.equal(reply.error, undefined, JSON.stringify(reply.error));
  return { raw, result: reply.subscribe as Msg };
}

/** Rebuilds the payloads a delta subscription was sent, as centrifuge-js does (bytes of the base, then each delta). */
function decode(pubs: Msg[]): unknown[] {
  let base = new Uint8Array();
  return pubs.map((p) => {
    assert.equal(typeof p.data, 'string', 'a delta subscription gets data as a string');
    base = p.delta ? applyDelta(base, new TextEncoder().encode(p.data as string)) : new TextEncoder().encode(p.data as string);
    return JSON.parse(new TextDecoder().decode(base));
  });
}

test('negotiated only where the namespace allows fossil; other namespaces or none asked: no delta, plain data; an unknown type closes with 3501, as in Centrifugo', async () => {
  const yes = await rawSubscribed('dz:neg', { delta: 'fossil' });
  assert.equal(yes.result.delta, true);
  const other = await rawSubscribed('dz:neg', { delta: '' });
  assert.equal(other.result.delta, undefined);
  for (const unknown of ['xdelta', 1]) {
    const raw = await RawClient.open(node.wsUrl);
    await raw.connect({ token: await userToken('d1') });
    raw.send({ id: raw.id(), subscribe: { channel: 'dz:neg', delta: unknown } });
    assert.equal((await raw.waitClose()).code, 3501, `delta ${JSON.stringify(unknown)}`);
  }
  const notAllowed = await rawSubscribed('plain:neg', { delta: 'fossil' });
  assert.equal(notAllowed.result.delta, undefined);
  await node.api.publish('dz:neg', board(1));
  await node.api.publish('plain:neg', board(1));
  await other.raw.waitFor((m) => m.push?.pub !== undefined);
  await notAllowed.raw.waitFor((m) => m.push?.pub !== undefined);
  // Not negotiated: the payload as JSON, as always.
  assert.deepEqual(other.raw.pushes('dz:neg')[0]!.data, board(1));
  assert.deepEqual(notAllowed.raw.pushes('plain:neg')[0]!.data, board(1));
  for (const c of [yes, other, notAllowed]) c.raw.close();
});

test('on the wire: the first publication in full as a string, the next ones as deltas shorter than the payload', async () => {
  const { raw } = await rawSubscribed('dz:wire', { delta: 'fossil' });
  for (let i = 1; i <= 4; i++) await node.api.publish('dz:wire', board(i));
  await until(() => raw.pushes('dz:wire').length === 4);
  const pubs = raw.pushes('dz:wire');
  assert.equal(pubs[0]!.delta, undefined);
  assert.equal(pubs[0]!.data, JSON.stringify(board(1)));
  for (const p of pubs.slice(1)) {
    assert.equal(p.delta, true);
    assert.ok((p.data as string).length < JSON.stringify(board(2)).length / 4, `a delta of ${(p.data as string).length} bytes`);
  }
  assert.deepEqual(decode(pubs), [1, 2, 3, 4].map((i) => board(i)));
  raw.close();
});

test('centrifuge-js decodes every delta into what was published, beside a subscriber without delta', async () => {
  const c = client(node, { token: await userToken('d2') });
  const sub: Subscription = c.newSubscription('dz:js', { delta: 'fossil' });
  const got = collect(sub);
  sub.subscribe();
  const c2 = client(node, { token: await userToken('d3') });
  const plainSub = c2.newSubscription('dz:js');
  const plainGot = collect(plainSub);
  plainSub.subscribe();
  c.connect();
  c2.connect();
  await Promise.all([sub.ready(3000), plainSub.ready(3000)]);
  const sent = Array.from({ length: 30 }, (_, i) => board(i, i % 7 === 3 ? 'équipe' : 'team'));
  for (const p of sent) await node.api.publish('dz:js', p);
  await until(() => got.length === 30 && plainGot.length === 30, 5000, '30 publications each');
  assert.deepEqual(got, sent);
  assert.deepEqual(plainGot, sent);
  const stats = sub.deltaStats();
  assert.equal(stats.numPublications, 30);
  assert.ok(stats.numDeltaPayloads >= 20, `deltas: ${JSON.stringify(stats)}`);
  assert.ok(stats.bytesReceived < stats.bytesDecoded / 3, `compression: ${JSON.stringify(stats)}`);
  c.disconnect();
  c2.disconnect();
});

test('a delta splitting a multi-byte character is not text: that publication goes in full, and decodes', async () => {
  // Cyrillic letters share their first byte: changing one in the middle makes fossil copy that byte
  // and insert the second alone (checked here, so the case stays covered).
  const text = (letter: string) => ({ text: `${'привет мир '.repeat(8)}${letter}${' до свидания'.repeat(8)}` });
  const before = Buffer.from(JSON.stringify(text('и')));
  const afterChange = Buffer.from(JSON.stringify(text('й')));
  assert.equal(isUtf8(createDelta(before, afterChange)), false, 'the case: a delta that is not UTF-8');

  const { raw } = await rawSubscribed('dz:utf8', { delta: 'fossil' });
  const c = client(node, { token: await userToken('d4') });
  const sub = c.newSubscription('dz:utf8', { delta: 'fossil' });
  const got = collect(sub);
  sub.subscribe();
  c.connect();
  await sub.ready(3000);
  const sent = [text('и'), text('й'), text('и'), { ...text('й'), n: 1 }];
  for (const p of sent) await node.api.publish('dz:utf8', p);
  await until(() => got.length === 4 && raw.pushes('dz:utf8').length === 4, 5000, 'four publications');
  assert.deepEqual(got, sent);
  const pubs = raw.pushes('dz:utf8');
  assert.equal(pubs[1]!.delta, undefined, 'the split delta went in full');
  assert.deepEqual(decode(pubs), sent);
  c.disconnect();
  raw.close();
});

test('without delta_publish, only publications published with delta go as deltas', async () => {
  const { raw } = await rawSubscribed('flag:a', { delta: 'fossil' });
  await node.api.publish('flag:a', board(1));
  await node.api.publish('flag:a', board(2));
  await node.api.publish('flag:a', board(3), { delta: true });
  await node.api.broadcast(['flag:a'], board(4), { delta: true });
  await until(() => raw.pushes('flag:a').length === 4);
  const pubs = raw.pushes('flag:a');
  assert.deepEqual(
    pubs.map((p) => p.delta),
    [undefined, undefined, true, true],
  );
  assert.equal(pubs[1]!.data, JSON.stringify(board(2)), 'in full, as a string');
  assert.deepEqual(decode(pubs), [1, 2, 3, 4].map((i) => board(i)));
  raw.close();
});

test('recovery: missed publications come in the subscribe result as a chain (full, then deltas), and live ones continue it', async () => {
  const first = await rawSubscribed('rec:a', { delta: 'fossil' });
  for (let i = 1; i <= 2; i++) await node.api.publish('rec:a', board(i));
  await until(() => first.raw.pushes('rec:a').length === 2);
  const position = { offset: 2, epoch: first.result.epoch as string };
  first.raw.close();
  for (let i = 3; i <= 6; i++) await node.api.publish('rec:a', board(i));
  const again = await rawSubscribed('rec:a', { delta: 'fossil', recoverable: true, recover: true, ...position });
  assert.equal(again.result.recovered, true);
  assert.equal(again.result.delta, true);
  const recovered = again.result.publications as Msg[];
  assert.deepEqual(
    recovered.map((p) => [p.offset, p.delta]),
    [
      [3, undefined],
      [4, true],
      [5, true],
      [6, true],
    ],
  );
  await node.api.publish('rec:a', board(7));
  await until(() => again.raw.pushes('rec:a').length === 1);
  const live = again.raw.pushes('rec:a');
  assert.equal(live[0]!.delta, true, 'against the last recovered one');
  assert.deepEqual(decode([...recovered, ...live]), [3, 4, 5, 6, 7].map((i) => board(i)));
  again.raw.close();

  // The same through centrifuge-js, cut off and recovering.
  const c = client(node, { token: await userToken('d5'), minReconnectDelay: 200, maxReconnectDelay: 300 });
  const sub = c.newSubscription('rec:b', { delta: 'fossil' });
  const got = collect(sub);
  sub.subscribe();
  c.connect();
  await sub.ready(3000);
  for (let i = 1; i <= 3; i++) await node.api.publish('rec:b', board(i));
  await until(() => got.length === 3);
  await node.api.disconnect('d5', { disconnect: { code: 3011, reason: 'reconnect' } });
  for (let i = 4; i <= 8; i++) await node.api.publish('rec:b', board(i));
  await until(() => got.length === 8, 5000, 'recovered publications');
  await node.api.publish('rec:b', board(9));
  await until(() => got.length === 9);
  await sleep(50);
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => board(i)));
  assert.ok(sub.deltaStats().numDeltaPayloads >= 6, JSON.stringify(sub.deltaStats()));
  c.disconnect();
});

test('what deltas cost is bounded: clients recovering the same publications share each delta; one subscribe diffs at most 1 MiB; unrelated payloads are not diffed', async () => {
  // Ten clients recovering the same five publications: four deltas in all, not forty.
  const first = await rawSubscribed('rec:storm'); // no delta: nothing diffed while they are published
  for (let i = 1; i <= 5; i++) await node.api.publish('rec:storm', board(i, 'storm'));
  const since = { offset: 0, epoch: first.result.epoch as string };
  first.raw.close();
  const before = deltaCounts.diffs;
  const clients = await Promise.all(Array.from({ length: 10 }, () => rawSubscribed('rec:storm', { delta: 'fossil', recover: true, ...since })));
  for (const c of clients) {
    assert.deepEqual(decode(c.result.publications as Msg[]), [1, 2, 3, 4, 5].map((i) => board(i, 'storm')));
    c.raw.close();
  }
  assert.equal(deltaCounts.diffs - before, 4);

  // Thirty publications of 43 KB to recover: deltas while the 1 MiB budget lasts, then in full.
  const big = (i: number) => ({ i, rows: Array.from({ length: 1200 }, (_, r) => `row ${r} of the budget test: ${r === i ? 'changed' : 'same'}`) });
  const start = await rawSubscribed('rec:budget');
  for (let i = 1; i <= 30; i++) await node.api.publish('rec:budget', big(i));
  start.raw.close();
  const again = await rawSubscribed('rec:budget', { delta: 'fossil', recover: true, offset: 0, epoch: start.result.epoch as string });
  const recovered = again.result.publications as Msg[];
  const kinds = recovered.map((p) => (p.delta ? 'delta' : 'full')).join(' ');
  assert.match(kinds, /^full (delta ){20,26}(full ?){4,10}$/, kinds);
  assert.deepEqual(decode(recovered), Array.from({ length: 30 }, (_, i) => big(i + 1)));
  again.raw.close();

  // Unrelated payloads (sampling finds nothing in common): sent in full, no diff made.
  const { raw } = await rawSubscribed('dz:random', { delta: 'fossil' });
  const noise = (seed: number) => ({ noise: Array.from({ length: 200 }, (_, i) => ((seed * 7919 + i * 104729) ** 2 % 1e9).toString(36)).join('') });
  const diffs = deltaCounts.diffs;
  for (let i = 1; i <= 3; i++) await node.api.publish('dz:random', noise(i));
  await until(() => raw.pushes('dz:random').length === 3);
  assert.deepEqual(raw.pushes('dz:random').map((p) => p.delta), [undefined, undefined, undefined]);
  assert.equal(deltaCounts.diffs, diffs);
  raw.close();
});
