// The hub encodes each publication once per wire format and hands the same bytes to every subscriber.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Publication, StreamPosition } from '../../src/engine/engine.js';
import { MemoryEngine } from '../../src/engine/memory.js';
import { Hub, type Subscriber } from '../../src/hub/hub.js';

class Recorder implements Subscriber {
  got: Buffer[] = [];
  constructor(readonly format: string) {}
  resynced: string[] = [];
  deliver(_c: string, _p: Publication, _pos: StreamPosition, bytes: Buffer): void {
    this.got.push(bytes);
  }
  resync(channel: string): void {
    this.resynced.push(channel);
  }
}

test('one encoding per format per publication, shared by all subscribers; engine subscription is reference-counted', async () => {
  const engine = new MemoryEngine({ historyMetaTtlMs: 60_000, idempotentResultTtlMs: 60_000 });
  const calls: string[] = [];
  const subscribed: string[] = [];
  const realSubscribe = engine.subscribe.bind(engine);
  const realUnsubscribe = engine.unsubscribe.bind(engine);
  engine.subscribe = async (c) => {
    subscribed.push(`+${c}`);
    return realSubscribe(c);
  };
  engine.unsubscribe = async (c) => {
    subscribed.push(`-${c}`);
    return realUnsubscribe(c);
  };
  const hub = new Hub(engine, {
    a: (_c, p) => (calls.push('a'), Buffer.concat([Buffer.from('a:'), p.data])),
    b: (_c, p) => (calls.push('b'), Buffer.concat([Buffer.from('b:'), p.data])),
  });
  await engine.start(hub);
  const subs = [new Recorder('a'), new Recorder('b'), new Recorder('a'), new Recorder('b'), new Recorder('a')];
  for (const s of subs) await hub.subscribe('ch', s);
  await engine.publish('ch', { data: Buffer.from('x') });
  assert.deepEqual(calls.sort(), ['a', 'b']);
  assert.equal(subs[0]!.got[0], subs[2]!.got[0]);
  assert.equal(subs[0]!.got[0], subs[4]!.got[0]);
  assert.equal(subs[1]!.got[0], subs[3]!.got[0]);
  assert.equal(subs[0]!.got[0]!.toString(), 'a:x');
  assert.equal(subs[1]!.got[0]!.toString(), 'b:x');
  assert.deepEqual(subscribed, ['+ch']);
  for (const s of subs) await hub.unsubscribe('ch', s);
  assert.deepEqual(subscribed, ['+ch', '-ch']);
  assert.equal(hub.channelCount(), 0);
  await engine.publish('ch', { data: Buffer.from('y') });
  assert.equal(subs[0]!.got.length, 1);
  await engine.close();
});

/** A started hub on a memory engine with two subscribers: x on c1 and c2, y on `yOn`. */
async function twoSubscribers(yOn: string) {
  const engine = new MemoryEngine({ historyMetaTtlMs: 60_000, idempotentResultTtlMs: 60_000 });
  const hub = new Hub(engine, { a: (_c, p) => p.data });
  await engine.start(hub);
  const x = new Recorder('a');
  const y = new Recorder('a');
  await hub.subscribe('c1', x);
  await hub.subscribe('c2', x);
  await hub.subscribe(yOn, y);
  return { engine, hub, x, y };
}

test('resync: every subscriber of every channel is told, and the hub forgets them', async () => {
  const { engine, hub, x, y } = await twoSubscribers('c1');
  hub.onResync();
  assert.deepEqual(x.resynced.sort(), ['c1', 'c2']);
  assert.deepEqual(y.resynced, ['c1']);
  assert.equal(hub.channelCount(), 0);
  await engine.close();
});

test('resync of some channels: only their subscribers are told, the other channels keep delivering', async () => {
  const { engine, hub, x, y } = await twoSubscribers('c2');
  hub.onResync(['c2', 'not-here']);
  assert.deepEqual(x.resynced, ['c2']);
  assert.deepEqual(y.resynced, ['c2']);
  assert.deepEqual([...hub.channelCounts()], [['c1', 1]]);
  assert.equal(hub.channelCount(), 1);
  await engine.publish('c1', { data: Buffer.from('still') });
  assert.deepEqual(x.got.map(String), ['still']);
  await engine.close();
});

test('an engine subscribe that fails leaves nothing behind, fails every waiting subscriber, and is tried again by the next', async () => {
  const engine = new MemoryEngine({ historyMetaTtlMs: 60_000, idempotentResultTtlMs: 60_000 });
  let attempts = 0;
  engine.subscribe = async () => {
    attempts++;
    await new Promise((r) => setTimeout(r, 10));
    if (attempts === 1) throw new Error('redis down');
  };
  const hub = new Hub(engine, { a: (_c, p) => p.data });
  await engine.start(hub);
  const x = new Recorder('a');
  const y = new Recorder('a');
  const results = await Promise.allSettled([hub.subscribe('ch', x), hub.subscribe('ch', y)]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  assert.equal(hub.channelCount(), 0);
  const z = new Recorder('a');
  await hub.subscribe('ch', z);
  assert.equal(attempts, 2);
  await engine.publish('ch', { data: Buffer.from('after') });
  assert.equal(z.got.length, 1);
  assert.equal(x.got.length + y.got.length, 0);
  await engine.close();
});

test('a channel whose subscribers come and go (one, several, one, none, one again): each publication reaches exactly the subscribers of the moment, once', async () => {
  const engine = new MemoryEngine({ historyMetaTtlMs: 60_000, idempotentResultTtlMs: 60_000 });
  const hub = new Hub(engine, { a: (_c, p) => p.data });
  await engine.start(hub);
  const [r1, r2, r3] = [new Recorder('a'), new Recorder('a'), new Recorder('a')];
  const got = () => [r1, r2, r3].map((r) => r.got.map((b) => b.toString()).join(''));
  const publish = (data: string) => engine.publish('ch', { data: Buffer.from(data) });
  await hub.subscribe('ch', r1);
  await hub.subscribe('ch', r1); // the same subscriber again: still once
  await publish('a');
  assert.deepEqual(got(), ['a', '', '']);
  await hub.subscribe('ch', r2);
  await hub.subscribe('ch', r3);
  await publish('b');
  assert.deepEqual(got(), ['ab', 'b', 'b']);
  assert.equal(hub.subscriptionCount(), 3);
  await hub.unsubscribe('ch', r1);
  await hub.unsubscribe('ch', r3);
  await hub.unsubscribe('ch', r3); // not subscribed any more: nothing happens
  await publish('c');
  assert.deepEqual(got(), ['ab', 'bc', 'b']);
  assert.deepEqual([...hub.channelCounts()], [['ch', 1]]);
  await hub.unsubscribe('ch', r2);
  assert.equal(hub.channelCount(), 0);
  await publish('d');
  assert.deepEqual(got(), ['ab', 'bc', 'b']);
  await hub.subscribe('ch', r3);
  await publish('e');
  assert.deepEqual(got(), ['ab', 'bc', 'be']);
  await hub.unsubscribe('ch', r3);
  assert.equal(hub.channelCount(), 0);
  await publish('f');
  assert.deepEqual(got(), ['ab', 'bc', 'be']);
  await hub.subscribe('ch', r1);
  hub.onResync(['ch']);
  assert.deepEqual(r1.resynced, ['ch']);
  assert.equal(hub.channelCount(), 0);
  await engine.close();
});
