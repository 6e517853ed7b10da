// The shared timer wheel: deadlines fire once, after (not before) their delay; cancel and reschedule work.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeadlineObject, timers } from '../../src/hub/timer-wheel.js';

/** A deadline that runs `f`. */
class Call extends DeadlineObject {
  constructor(private readonly f: () => void) {
    super();
  }
  fire(): void {
    this.f();
  }
}

test('deadlines fire once after their delay, in order; cancelled ones never fire; rescheduling moves them', async () => {
  const fired: string[] = [];
  const t0 = Date.now();
  const at: Record<string, number> = {};
  const d = (name: string) => new Call(() => (fired.push(name), (at[name] = Date.now() - t0)));
  const a = d('a');
  const b = d('b');
  const c = d('c');
  const e = d('e');
  timers.schedule(b, 200);
  timers.schedule(a, 100);
  timers.schedule(c, 150);
  timers.cancel(c);
  timers.schedule(e, 50);
  timers.schedule(e, 300); // moved later
  await new Promise((r) => setTimeout(r, 450));
  assert.deepEqual(fired, ['a', 'b', 'e']);
  assert.ok(at.a! >= 100 && at.b! >= 200 && at.e! >= 300, JSON.stringify(at));
});

test('a step of the wall clock moves no deadline (an NTP step forward or back fires nothing early or late)', async () => {
  const realNow = Date.now;
  try {
    const fired: Record<string, number> = {};
    const t0 = performance.now();
    const d = (name: string) => new Call(() => void (fired[name] = performance.now() - t0));
    timers.schedule(d('forward'), 150);
    timers.schedule(d('back'), 150);
    // The wall clock jumps an hour ahead, then an hour behind, while the deadlines wait.
    Date.now = () => realNow() + 3_600_000;
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(fired, {}, 'nothing fired on the jump ahead');
    Date.now = () => realNow() - 3_600_000;
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(fired.forward! >= 150 && fired.forward! < 400, JSON.stringify(fired));
    assert.ok(fired.back! >= 150 && fired.back! < 400, JSON.stringify(fired));
  } finally {
    Date.now = realNow;
  }
});

test('many deadlines of one tick: each fires once; those cancelled before their turn, first, middle or last, even by another one firing, never do', async () => {
  const fired: number[] = [];
  const ds: Call[] = [];
  // Whichever fires first cancels 7 and 19 (due at the same tick, not fired yet) and moves 11 later.
  for (let i = 0; i < 20; i++)
    ds.push(
      new Call(() => {
        if (fired.length === 0) {
          assert.ok(![7, 11, 19].includes(i));
          timers.cancel(ds[7]!);
          timers.cancel(ds[19]!);
          timers.schedule(ds[11]!, 100);
        }
        fired.push(i);
      }),
    );
  for (const d of ds) timers.schedule(d, 50);
  // Cancelled before the tick: the first and the last scheduled, and one in the middle.
  timers.cancel(ds[0]!);
  timers.cancel(ds[19]!);
  timers.cancel(ds[10]!);
  timers.cancel(ds[10]!); // twice: nothing more happens
  timers.schedule(ds[0]!, 50); // scheduled again: fires
  await new Promise((r) => setTimeout(r, 300));
  // In the order they were scheduled (0 again last in its tick), then 11 at its later tick.
  assert.deepEqual(fired, [1, 2, 3, 4, 5, 6, 8, 9, 12, 13, 14, 15, 16, 17, 18, 0, 11]);
});

test('on an idle wheel, a deadline due within a tick still fires (the stale tick is brought to now first)', async () => {
  await new Promise((r) => setTimeout(r, 50)); // nothing scheduled: the wheel stops
  const realNow = performance.now.bind(performance);
  // A clock that reads exact tick boundaries, so a delay of 0 falls on the current tick.
  performance.now = () => Math.floor(realNow() / 10) * 10;
  try {
    let fired = false;
    timers.schedule(new Call(() => (fired = true)), 0);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(fired);
  } finally {
    performance.now = realNow;
  }
});
