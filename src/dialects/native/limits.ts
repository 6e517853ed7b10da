// The native dialect's connection limits, under Centrifugo's names and with its answers: how many
// connections this node holds (`client.connection_limit`) and opens a second
// (`client.connection_rate_limit`), refused with HTTP 503 before the WebSocket upgrade or the
// stream's answer, and how many one user may hold on it (`client.user_connection_limit`), a
// connect over it closed with 3504. Each is off at 0, the default.
import type { Logger } from 'pino';
import type { HeraldConfig } from '../../config/schema.js';
import { throttledWarn } from '../../engine/log-throttle.js';
import type { SessionRegistry } from './registry.js';

/** Which limit turned a connection away (the `limit` label of the metric). */
export type LimitName = 'connection_limit' | 'connection_rate_limit' | 'user_connection_limit';
/** The limits that refuse a connection before it opens (503). */
export type OpenLimit = Exclude<LimitName, 'user_connection_limit'>;

/** The connection limits of one node's native dialect, and how often each refused. */
export class ConnectionLimits {
  /** Connections refused since start, by limit. */
  readonly refused: Record<LimitName, number> = { connection_limit: 0, connection_rate_limit: 0, user_connection_limit: 0 };
  private readonly nodeLimit: number;
  private readonly rate: number;
  private readonly userLimit: number;
  /** The rate limit's bucket: connections it may still open now (up to `rate`, one second's worth). */
  private tokens: number;
  private refilledAt: number;
  private readonly warn: ReturnType<typeof throttledWarn>;

  constructor(
    config: HeraldConfig,
    private readonly registry: SessionRegistry<{ readonly id: string; readonly user: string }>,
    private readonly log: Logger,
    /** The clock of the rate limit (ms, monotonic). */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.nodeLimit = config.client.connection_limit;
    this.rate = config.client.connection_rate_limit;
    this.userLimit = config.client.user_connection_limit;
    this.tokens = this.rate;
    this.refilledAt = this.now();
    this.warn = throttledWarn(log, 5_000);
  }

  /**
   * Whether a new connection may open (WebSocket, HTTP stream or SSE): undefined when it may, or the
   * limit that refuses it (answer 503 now). A connection still waiting for its connect command counts,
   * so that sockets opened and never used cannot push the node past the limit; each holds its place
   * up to `client.stale_close_delay`.
   */
  admit(): OpenLimit | undefined {
    if (this.nodeLimit > 0 && this.registry.total >= this.nodeLimit) {
      this.refused.connection_limit++;
      this.warn('node', { limit: this.nodeLimit }, 'node connection limit reached (client.connection_limit): new connections answered 503');
      return 'connection_limit';
    }
    if (this.rate > 0) {
      const now = this.now();
      this.tokens = Math.min(this.rate, this.tokens + ((now - this.refilledAt) * this.rate) / 1000);
      this.refilledAt = now;
      if (this.tokens < 1) {
        this.refused.connection_rate_limit++;
        this.warn('rate', { limit: this.rate }, 'connection rate limit reached (client.connection_rate_limit): new connections answered 503');
        return 'connection_rate_limit';
      }
      this.tokens -= 1;
    }
    return undefined;
  }

  /**
   * Whether `user` may hold one more connection on this node (anonymous connections are not
   * counted, as in Centrifugo); when not, the caller closes the connection with 3504.
   */
  userAllowed(user: string, client: string): boolean {
    if (this.userLimit <= 0 || user === '' || this.registry.userConnections(user) < this.userLimit) return true;
    this.refused.user_connection_limit++;
    this.log.info({ user, client, limit: this.userLimit }, 'limit of connections for user reached (client.user_connection_limit): disconnected (3504)');
    return false;
  }
}

/** The text of a 503 answer: which limit refused the connection. */
export function refusalText(limit: OpenLimit): string {
  return `${limit === 'connection_limit' ? 'node connection limit' : 'connection rate limit'} reached (client.${limit}), retry later\n`;
}
