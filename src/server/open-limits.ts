// The limits every dialect puts on new connections, off at 0 (the default): how many connections
// the dialect holds on this node (`<section>.connection_limit`) and opens a second
// (`<section>.connection_rate_limit`, a burst of that many, then that many a second). A connection
// past either is answered 503 before its WebSocket upgrade or its stream, the body naming the limit.
import type { Logger } from 'pino';
import { throttledWarn } from '../engine/log-throttle.js';

/** A limit that refuses a connection before it opens (the `limit` label of the metric). */
export type OpenLimit = 'connection_limit' | 'connection_rate_limit';

/** What one dialect's limits are. */
export interface OpenLimitsOptions {
  /** The config section the keys are under (`client`, `webdis`, `ws4redis`), for logs and answers. */
  readonly section: string;
  /** Most connections held at once; 0: no limit. */
  readonly connectionLimit: number;
  /** Most new connections a second; 0: no limit. */
  readonly rateLimit: number;
}

/** One dialect's limits on new connections on this node, and how often each refused. */
export class OpenLimits {
  /** Connections refused since start, by limit. */
  readonly refused: Record<OpenLimit, number> = { connection_limit: 0, connection_rate_limit: 0 };
  /** The rate limit's bucket: connections it may still open now (up to the rate, one second's worth). */
  private tokens: number;
  private refilledAt: number;
  private readonly warn: ReturnType<typeof throttledWarn>;

  constructor(
    private readonly options: OpenLimitsOptions,
    /** How many connections the dialect holds now, those still opening included. */
    private readonly held: () => number,
    log: Logger,
    /** The rate limit's clock (ms, monotonic). */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = options.rateLimit;
    this.refilledAt = now();
    this.warn = throttledWarn(log, 5_000);
  }

  /** Whether a new connection may open: undefined when it may, or the limit that refuses it (answer 503 now). */
  admit(): OpenLimit | undefined {
    const { section, connectionLimit, rateLimit } = this.options;
    if (connectionLimit > 0 && this.held() >= connectionLimit) {
      this.refused.connection_limit++;
      this.warn('node', { limit: connectionLimit }, `node connection limit reached (${section}.connection_limit): new connections answered 503`);
      return 'connection_limit';
    }
    if (rateLimit > 0) {
      const now = this.now();
      this.tokens = Math.min(rateLimit, this.tokens + ((now - this.refilledAt) * rateLimit) / 1000);
      this.refilledAt = now;
      if (this.tokens < 1) {
        this.refused.connection_rate_limit++;
        this.warn('rate', { limit: rateLimit }, `connection rate limit reached (${section}.connection_rate_limit): new connections answered 503`);
        return 'connection_rate_limit';
      }
      this.tokens -= 1;
    }
    return undefined;
  }

  /** The text of the 503 answer: which limit refused the connection. */
  refusalText(limit: OpenLimit): string {
    return `${limit === 'connection_limit' ? 'node connection limit' : 'connection rate limit'} reached (${this.options.section}.${limit}), retry later\n`;
  }
}
