// Publishing at a steady rate, as the benchmark's publishers do: what is due goes out in small bursts
// on a short timer (every 1 ms at high rates, at most every 10 ms), never ahead of time.

import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Calls `send(i)` for i = 0, step, 2·step, … below `total`, `step` items at a time, so that items go
 * out at `rate` a second; resolves with how many items went out once every `send` has settled.
 * `total` must be a multiple of `step`.
 */
export async function atRate(total, rate, send, step = 1) {
  const start = performance.now();
  const pending = [];
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + step);
    for (; sent + step <= due; sent += step) pending.push(send(sent));
    await sleep(Math.max(1, Math.min(10, 1000 / rate)));
  }
  await Promise.all(pending);
  return sent;
}
