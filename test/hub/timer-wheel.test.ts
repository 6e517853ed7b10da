// The shared timer wheel: deadlines fire once, after (not before) their delay; cancel and reschedule work.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { timers } from '../../src/hub/timer-wheel.js';

test('deadlines fire once after their delay, in order; cancelled ones never fire; rescheduling moves them', async () => {
  const fired: string[] = [];
  const t0 = Date.now();
  const at: Record<string, number> = {};
  const d = (name: string) => ({ fire: () => (fired.push(name), (at[name] = Date.now() - t0)) });
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
    const d = (name: string) => ({ fire: () => void (fired[name] = performance.now() - t0) });
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
