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
