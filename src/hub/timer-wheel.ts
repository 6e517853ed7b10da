// One shared timer for many connection deadlines (pings, pong checks, stale handshakes). A Node
// Timeout per connection per deadline costs memory and timer-list work at 10,000s of sockets; the
// wheel keeps each tick's deadlines in a list linked through the deadlines themselves and fires due
// ones on a coarse tick.

/** `wheelAt` of a deadline that is not scheduled: what a new deadline's `wheelAt` starts as. */
export const NOT_SCHEDULED = -1;

/**
 * A deadline that calls `fire` once, unless cancelled first: any object with these fields (a class of
 * its own, or a connection's session, which then needs no extra object). Its place on the wheel is
 * kept in the object itself, so a scheduled deadline costs no map or set entry (those were about 100
 * bytes a deadline, with a set per tick besides).
 */
export interface Deadline {
  /** The tick it is due at, or NOT_SCHEDULED: the wheel's, not to be set by anyone else. */
  wheelAt: number;
  /**
   * Its neighbours among the deadlines due at the same tick, in the order they were scheduled: the
   * wheel's. The first one's `wheelPrev` is the last one, so a deadline joins the end at once.
   */
  wheelPrev: Deadline | undefined;
  wheelNext: Deadline | undefined;

  fire(): void;
}

/** A deadline of its own (an object made for it), for what is not a deadline itself. */
export abstract class DeadlineObject implements Deadline {
  wheelAt = NOT_SCHEDULED;
  wheelPrev: Deadline | undefined = undefined;
  wheelNext: Deadline | undefined = undefined;

  abstract fire(): void;
}

// Fine enough that the deadlines due in one tick stay few: pings are spread at random over the
// interval, and at 50 ms the ~20 pings (and then ~20 pongs) of a tick at 10,000 sockets went out in
// one burst that held up deliveries behind it (s2 p99 in docs/optimisations.md). An idle wheel stops.
const TICK_MS = 10;

/** The current tick. */
function ticksNow(): number {
  return Math.floor(performance.now() / TICK_MS);
}

/** Deadlines by due tick. */
class TimerWheel {
  /**
   * Due tick -> the first of that tick's deadlines; the rest follow through `wheelNext`, and fire in
   * the order they were scheduled (a session's pong check, scheduled before its next ping, fires
   * before that ping when both fall due in one tick).
   */
  private readonly slots = new Map<number, Deadline>();
  /** How many deadlines are scheduled. */
  private scheduled = 0;
  private timer: NodeJS.Timeout | undefined;
  // Ticks count on the monotonic clock from the process's start (performance.now), not from 1970: a
  // step of the wall clock moves no deadline, and ticks are small integers (for 248 days), which V8
  // keeps in place, where ticks since 1970 were a boxed number in every deadline's entry.
  private tick = ticksNow();

  /** Schedules (or reschedules) `d` to fire after `delayMs` (rounded up to the tick). */
  schedule(d: Deadline, delayMs: number): void {
    this.cancel(d);
    if (!this.timer) {
      // An idle wheel's tick is stale: bring it to now first, or a deadline due within a tick could
      // land on a tick the wheel never visits.
      this.tick = ticksNow();
      this.timer = setInterval(() => this.advance(), TICK_MS);
      this.timer.unref();
    }
    // Never the current tick: a deadline scheduled while a tick fires goes to a later one.
    const at = Math.max(this.tick + 1, this.tickIn(delayMs));
    const first = this.slots.get(at);
    if (first) {
      const last = first.wheelPrev!;
      last.wheelNext = d;
      d.wheelPrev = last;
      first.wheelPrev = d;
    } else {
      d.wheelPrev = d;
      this.slots.set(at, d);
    }
    d.wheelNext = undefined;
    d.wheelAt = at;
    this.scheduled++;
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
    const at = d.wheelAt;
    if (at === NOT_SCHEDULED) return;
    const first = this.slots.get(at)!;
    const next = d.wheelNext;
    if (d === first) {
      if (next) {
        next.wheelPrev = d.wheelPrev; // the last one
        this.slots.set(at, next);
      } else {
        this.slots.delete(at);
      }
    } else {
      const prev = d.wheelPrev!;
      prev.wheelNext = next;
      if (next) next.wheelPrev = prev;
      else first.wheelPrev = prev; // it was the last one
    }
    d.wheelAt = NOT_SCHEDULED;
    d.wheelPrev = undefined;
    d.wheelNext = undefined;
    this.scheduled--;
  }

  private advance(): void {
    const now = ticksNow();
    while (this.tick < now) {
      this.tick++;
      // One at a time from the head of the tick's list, so a deadline that an earlier one's fire()
      // cancels (or reschedules) is out of the list before its turn and does not fire.
      for (let d = this.slots.get(this.tick); d !== undefined; d = this.slots.get(this.tick)) {
        this.cancel(d);
        d.fire();
      }
    }
    if (this.scheduled === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** The process's wheel. */
export const timers = new TimerWheel();
