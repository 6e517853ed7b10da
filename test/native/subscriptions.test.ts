// A session's subscriptions behave as a Map by channel (insertion order kept), whether they hold
// none, one (kept inline) or several: checked against a real Map over random operations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChannelSub } from '../../src/dialects/native/channel-ops.js';
import type { NativeSession } from '../../src/dialects/native/session.js';
import { Subscriptions } from '../../src/dialects/native/subscriptions.js';

// The container reads a subscription's channel only: no session is needed behind it.
const sub = (channel: string, n: number): ChannelSub => {
  const s = new ChannelSub(undefined as unknown as NativeSession, channel, false, false, false, 0, undefined);
  s.offset = n;
  return s;
};

test('subscriptions match a Map by channel through random adds, replacements and removals', () => {
  // A small deterministic generator, so a failure repeats.
  let seed = 7;
  const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const channels = ['a', 'b', 'c', 'd'];
  const subs = new Subscriptions();
  const oracle = new Map<string, ChannelSub>();
  for (let step = 0; step < 2_000; step++) {
    const channel = channels[next(channels.length)]!;
    if (next(3) === 0) {
      assert.equal(subs.delete(channel), oracle.delete(channel), `step ${step}: delete ${channel}`);
    } else {
      const s = sub(channel, step);
      subs.set(s);
      oracle.set(channel, s);
    }
    assert.equal(subs.size, oracle.size, `step ${step}: size`);
    assert.deepEqual(subs.list(), [...oracle.values()], `step ${step}: list in insertion order`);
    for (const c of channels) {
      assert.equal(subs.get(c), oracle.get(c), `step ${step}: get ${c}`);
      assert.equal(subs.has(c), oracle.has(c), `step ${step}: has ${c}`);
    }
  }
});

test('the list is a snapshot: removing while iterating it visits every subscription once', () => {
  const subs = new Subscriptions();
  for (const c of ['x', 'y', 'z']) subs.set(sub(c, 0));
  const seen: string[] = [];
  for (const s of subs.list()) {
    seen.push(s.channel);
    subs.delete(s.channel);
  }
  assert.deepEqual(seen, ['x', 'y', 'z']);
  assert.equal(subs.size, 0);
  subs.set(sub('one', 1));
  assert.deepEqual(subs.list().map((s) => s.channel), ['one']);
  assert.equal(subs.get('other'), undefined);
});
