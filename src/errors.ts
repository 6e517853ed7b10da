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
