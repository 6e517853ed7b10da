// History reads of subscriptions being set up, shared. In a reconnect storm thousands of clients
// subscribe again to one channel, each recovering from the same position (or reading the same top):
// read one by one, a Redis engine would fetch and decode the same publications once per client. Reads
// asked for in the same turn of the event loop with the same query are made once, after that turn,
// and their result shared (never changed by its readers). Made after the turn, a shared read still
// sees every publication each asker may have missed: each asked only once it had joined the hub, so
// what the read does not see reaches it live.
import type { Engine, HistoryQuery, HistoryResult } from '../../engine/engine.js';

interface Pending {
  readonly channel: string;
  readonly query: HistoryQuery;
  readonly waiters: Array<{ resolve: (r: HistoryResult) => void; reject: (err: unknown) => void }>;
}

/** Reads of one node's subscriptions being set up, the same ones made once per turn of the event loop. */
export class SharedHistoryReads {
  private pending = new Map<string, Pending>();
  private scheduled = false;

  constructor(private readonly engine: Engine) {}

  /** The engine's history for `query`, read once with every same read asked for in this turn. */
  read(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const since = query.since;
    const key = `${channel}\u0000${query.limit}\u0000${query.reverse === true}\u0000${since ? `${since.offset}:${since.epoch}` : '-'}\u0000${query.metaTtlMs ?? ''}`;
    return new Promise((resolve, reject) => {
      let p = this.pending.get(key);
      if (!p) this.pending.set(key, (p = { channel, query, waiters: [] }));
      p.waiters.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = new Map();
    this.scheduled = false;
    for (const { channel, query, waiters } of batch.values()) {
      // From a promise, so that even an engine throwing at once rejects the waiters rather than the loop.
      Promise.resolve()
        .then(() => this.engine.history(channel, query))
        .then(
          (result) => {
            for (const w of waiters) w.resolve(result);
          },
          (err: unknown) => {
            for (const w of waiters) w.reject(err);
          },
        );
    }
  }
}
