// What a subscription being set up sends after its reply, of the publications that arrived live
// meanwhile (liveAfter): the ones after the reply's position, in order; a gap or another epoch means
// the client must recover again (null); a publication made without history (`skip_history`, offset
// 0) has no place in the stream and goes through as it came.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liveAfter, type Buffered } from '../../src/dialects/native/recovery.js';

const held = (offset: number, epoch = offset === 0 ? '' : 'E'): Buffered => ({
  pub: { offset, data: Buffer.from(String(offset)) } as Buffered['pub'],
  position: { offset, epoch },
  bytes: Buffer.from(String(offset)),
});
const offsets = (out: Buffered[] | null) => out?.map((b) => b.pub.offset) ?? null;

test('publications after the reply position go out in order; those the history covered are skipped', () => {
  assert.deepEqual(offsets(liveAfter([held(3), held(4), held(5)], 3, 'E')), [4, 5]);
  assert.deepEqual(offsets(liveAfter([], 3, 'E')), []);
});

test('a gap or another epoch: null (the client recovers again)', () => {
  assert.equal(liveAfter([held(5)], 3, 'E'), null);
  assert.equal(liveAfter([held(4, 'F')], 3, 'E'), null);
});

test('a publication without history (offset 0, no epoch) goes through in its place, among positioned ones', () => {
  assert.deepEqual(offsets(liveAfter([held(0)], 3, 'E')), [0]);
  assert.deepEqual(offsets(liveAfter([held(4), held(0), held(5)], 3, 'E')), [4, 0, 5]);
  assert.deepEqual(offsets(liveAfter([held(3), held(0)], 3, 'E')), [0]);
});
