import type { Logger } from 'pino';
import { throttledWarn } from './engine/log-throttle.js';

/** Stable error codes raised by Herald's own code (not wire codes; those live with each dialect). */
export type HeraldErrorCode =
  | 'HERALD_ERR_CONFIG'
  | 'HERALD_ERR_ENGINE'
  | 'HERALD_ERR_ENGINE_CLOSED'
  | 'HERALD_ERR_RESERVED'
  | 'HERALD_ERR_API'
  | 'HERALD_ERR_LISTEN';

/** An error with a stable `code`, so callers can branch without parsing messages. */
export class HeraldError extends Error {
  /** The stable code of this error. */
  readonly code: HeraldErrorCode;

  constructor(code: HeraldErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HeraldError';
    this.code = code;
  }
}

/** True for the engine failing for now (Redis unreachable or closing): the caller is told to retry. */
export function isEngineUnavailable(err: unknown): err is HeraldError {
  return err instanceof HeraldError && (err.code === 'HERALD_ERR_ENGINE' || err.code === 'HERALD_ERR_ENGINE_CLOSED');
}

/** How often the same failure with the engine away is logged (the rest counted in the next line). */
const ENGINE_WARN_INTERVAL_MS = 5_000;
/** Per logger, its throttled warnings of failures with the engine away. */
const engineWarns = new WeakMap<Logger, ReturnType<typeof throttledWarn>>();

/**
 * Logs a request or background task that failed: the engine being unavailable (expected during a
 * Redis outage, when every request and every retry fails alike, and logged by the engine itself) at
 * `warn` with its message only, at most once per 5 s per message with a count of the rest, so an
 * outage does not bury its cause; anything else at `error` with its stack, every time.
 */
export function logFailure(log: Logger, err: unknown, fields: Record<string, unknown>, msg: string): void {
  if (isEngineUnavailable(err)) {
    let warn = engineWarns.get(log);
    if (!warn) engineWarns.set(log, (warn = throttledWarn(log, ENGINE_WARN_INTERVAL_MS)));
    warn(msg, { ...fields, err: err.message }, `${msg}: engine unavailable`);
  } else {
    log.error({ ...fields, err }, msg);
  }
}
