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

/**
 * Logs a request that failed: the engine being unavailable (expected during a Redis outage, and
 * logged by the engine itself) at `warn` with its message only; anything else at `error` with its stack.
 */
export function logFailure(log: Logger, err: unknown, fields: Record<string, unknown>, msg: string): void {
  if (isEngineUnavailable(err)) log.warn({ ...fields, err: (err as Error).message }, `${msg}: engine unavailable`);
  else log.error({ ...fields, err }, msg);
}

/**
 * logFailure for background work that fails on every try while the engine is away (presence
 * updates, position checks): the engine being unavailable is warned of at most once per
 * `intervalMs` per message, with a count of the rest.
 */
export function throttledFailureLog(log: Logger, intervalMs: number): (err: unknown, fields: Record<string, unknown>, msg: string) => void {
  const warn = throttledWarn(log, intervalMs);
  return (err, fields, msg) => {
    if (isEngineUnavailable(err)) warn(msg, { ...fields, err: err.message }, msg);
    else logFailure(log, err, fields, msg);
  };
}
