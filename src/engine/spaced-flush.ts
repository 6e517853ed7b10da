// Batching of a Redis connection's (UN)SUBSCRIBEs: what is asked in one event-loop turn goes in one
// command, and in a storm (thousands of clients connecting or leaving at once) the batches are spaced
// so that each holds what came in a couple of milliseconds, not one client's channel. Each command
// is a write to Redis and a reply to read, which cost more than the channels in it.

/**
 * Runs `flush` once for the requests made before it runs: at the end of the turn, or, when it last
 * ran less than `spacingMs` ago, once that much has passed. A lone request waits for nothing.
 */
export class SpacedFlush {
  private pending: Promise<void> | undefined;
  private lastRun = -Infinity;

  constructor(
    private readonly flush: () => unknown,
    private readonly spacingMs: number,
  ) {}

  /** Asks for a flush; resolves once the flush that takes this request has ended (never rejects). */
  request(): Promise<void> {
    this.pending ??= new Promise<void>((resolve) => {
      const run = () => {
        // Requests made while this flush runs (or awaits Redis) go in the next one.
        this.pending = undefined;
        this.lastRun = performance.now();
        let done: unknown;
        try {
          done = this.flush();
        } catch {
          // The flush reports its own failures to the requests it took.
        }
        Promise.resolve(done).then(
          () => resolve(),
          () => resolve(),
        );
      };
      const wait = this.lastRun + this.spacingMs - performance.now();
      if (wait > 0) setTimeout(run, wait);
      else setImmediate(run);
    });
    return this.pending;
  }
}
