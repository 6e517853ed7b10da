// Repeated warnings, such as a connection error that ioredis reports on every retry during an outage
// or a cluster failover (hundreds of times), logged once per interval with a count of the rest.
import type { Logger } from 'pino';

/** Most distinct warnings remembered; past it they are forgotten (and may be logged again). */
const MAX_KEYS = 256;

/** A `warn` that logs each key at most once per `intervalMs`, then says how many it left out. */
export function throttledWarn(log: Logger, intervalMs: number): (key: string, fields: Record<string, unknown>, msg: string) => void {
  const last = new Map<string, { at: number; skipped: number }>();
  return (key, fields, msg) => {
    const now = Date.now();
    const seen = last.get(key);
    if (seen && now - seen.at < intervalMs) {
      seen.skipped++;
      return;
    }
    if (last.size >= MAX_KEYS) last.clear();
    last.set(key, { at: now, skipped: 0 });
    log.warn(seen?.skipped ? { ...fields, repeated: seen.skipped } : fields, msg);
  };
}
