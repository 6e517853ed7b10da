// Wait-until-true for test clients that receive frames: waiters wake on each event instead of polling.

/** Wakes waiters when something arrived; `until` re-checks a condition at each wake. */
export class Signal {
  private waiters: Array<() => void> = [];

  /** Wakes every waiter (call when a frame, a close or data arrives). */
  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Resolves once `check()` holds. Before each wait, `failure(timedOut)` may end it with an error
   * message (a closed socket, or the deadline passed); returning undefined keeps waiting.
   */
  async until(check: () => boolean, ms: number, failure: (timedOut: boolean) => string | undefined): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      const left = end - Date.now();
      const why = failure(left <= 0);
      if (why !== undefined) throw new Error(why);
      if (left <= 0) throw new Error('timed out');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
