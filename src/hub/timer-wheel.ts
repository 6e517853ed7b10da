// One shared timer for many connection deadlines (pings, pong checks, stale handshakes). A Node
// Timeout per connection per deadline costs memory and timer-list work at 10,000s of sockets; the
// wheel keeps an entry in a map and fires due entries on a coarse tick.

/** A deadline that calls `fire` once, unless cancelled first. */
export interface Deadline {
  fire(): void;
}

// Fine enough that the deadlines due in one tick stay few: pings are spread at random over the
// interval, and at 50 ms the ~20 pings (and then ~20 pongs) of a tick at 10,000 sockets went out in
// one burst that held up deliveries behind it (s2 p99 in docs/performance.md). An idle wheel stops.
const TICK_MS = 10;

/** The current tick. */
function ticksNow(): number {
  return Math.floor(performance.now() / TICK_MS);
}

/** Deadlines by due tick. */
class TimerWheel {
  private readonly slots = new Map<number, Set<Deadline>>();
  private readonly due = new Map<Deadline, number>();
  private timer: NodeJS.Timeout | undefined;
  // Ticks count on the monotonic clock from the process's start (performance.now), not from 1970: a
  // step of the wall clock moves no deadline, and ticks are small integers (for 248 days), which V8
  // keeps in place, where ticks since 1970 were a boxed number in every deadline's entry.
  private tick = ticksNow();

  /** Schedules (or reschedules) `d` to fire after `delayMs` (rounded up to the tick). */
  schedule(d: Deadline, delayMs: number): void {
    this.cancel(d);
    const at = Math.max(this.tick + 1, this.tickIn(delayMs));
    let slot = this.slots.get(at);
    if (!slot) this.slots.set(at, (slot = new Set()));
    slot.add(d);
    this.due.set(d, at);
    if (!this.timer) {
      this.tick = ticksNow();
      this.timer = setInterval(() => this.advance(), TICK_MS);
      this.timer.unref();
    }
  }

  /**
   * The wheel's current tick: a coarse clock (it moves while deadlines are scheduled), cheap enough
   * to read on every delivery.
   */
  get now(): number {
    return this.tick;
  }

  /** The tick `delayMs` from now, to compare with `now` later. */
  tickIn(delayMs: number): number {
    return Math.ceil((performance.now() + delayMs) / TICK_MS);
  }

  /** Cancels `d` if it is scheduled. */
  cancel(d: Deadline): void {
    const at = this.due.get(d);
    if (at === undefined) return;
    this.due.delete(d);
    const slot = this.slots.get(at);
    slot?.delete(d);
    if (slot && slot.size === 0) this.slots.delete(at);
  }

  private advance(): void {
    const now = ticksNow();
    while (this.tick < now) {
      this.tick++;
      const slot = this.slots.get(this.tick);
      if (!slot) continue;
      this.slots.delete(this.tick);
      for (const d of slot) {
        this.due.delete(d);
        d.fire();
      }
    }
    if (this.due.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** The process's wheel. */
export const timers = new TimerWheel();
