// The batching of (UN)SUBSCRIBEs (SpacedFlush): one flush for what is asked in a turn; a lone request
// is flushed at the end of its turn, one soon after a flush waits for the spacing, with what came meanwhile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { SpacedFlush } from '../../src/engine/spaced-flush.js';

test('requests in one turn take one flush, a lone request is not kept waiting, one soon after a flush waits for the spacing', async () => {
  const runs: number[] = [];
  let asked = 0;
  const flusher = new SpacedFlush(() => runs.push(asked), 30);
  asked = 3;
  const first = [flusher.request(), flusher.request(), flusher.request()];
  assert.equal(first[0], first[2], 'one flush for the three');
  await nextTurn();
  assert.deepEqual(runs, [3], 'flushed at the end of the turn');
  await Promise.all(first);

  // Right after a flush: the requests of the next turns wait for the spacing and go together.
  asked = 5;
  const soon = flusher.request();
  await nextTurn();
  await nextTurn();
  asked = 6;
  assert.equal(flusher.request(), soon);
  assert.deepEqual(runs, [3], 'not flushed before the spacing');
  await soon;
  assert.deepEqual(runs, [3, 6], 'one flush for both, once the spacing passed');

  // After a quiet spell longer than the spacing, a request is flushed at the end of its turn again.
  await sleep(40);
  const lone = flusher.request();
  await nextTurn();
  assert.equal(runs.length, 3);
  await lone;
});

test("a request resolves once its flush has ended, also an asynchronous or failing one; requests during a flush take the next", async () => {
  const order: string[] = [];
  let release!: () => void;
  const flusher = new SpacedFlush(async () => {
    order.push('flush');
    await new Promise<void>((r) => (release = r));
    order.push('flushed');
    throw new Error('redis said no');
  }, 0);
  const a = flusher.request().then(() => order.push('a'));
  await nextTurn();
  const b = flusher.request();
  assert.notEqual(b, a, 'a request during a flush waits for the next one');
  release();
  await a;
  assert.deepEqual(order, ['flush', 'flushed', 'a']);
  await nextTurn();
  release();
  await b;
  assert.deepEqual(order, ['flush', 'flushed', 'a', 'flush', 'flushed']);

  const throwing = new SpacedFlush(() => {
    throw new Error('sync failure');
  }, 0);
  await throwing.request(); // resolves: the flush reports its failures to the requests itself
});
