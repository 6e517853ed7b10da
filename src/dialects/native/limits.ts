// The native dialect's connection limits, under Centrifugo's names and with its answers: how many
// connections this node holds (`client.connection_limit`) and opens a second
// (`client.connection_rate_limit`), refused with HTTP 503 before the WebSocket upgrade or the
// stream's answer (server/open-limits.ts, shared with the other dialects), and how many one user may
// hold on it (`client.user_connection_limit`), a connect over it closed with 3504. Each is off at 0,
// the default.
import type { Logger } from 'pino';
import type { HeraldConfig } from '../../config/schema.js';
import { OpenLimits, type OpenLimit } from '../../server/open-limits.js';
import type { SessionRegistry } from './registry.js';

/** The native dialect's connection limits, and how often each refused. */
export class ConnectionLimits {
  private readonly open: OpenLimits;
  private readonly userLimit: number;
  private userRefused = 0;

  constructor(
    config: HeraldConfig,
    private readonly registry: SessionRegistry<{ readonly id: string; readonly user: string }>,
    private readonly log: Logger,
    /** The clock of the rate limit (ms, monotonic). */
    now?: () => number,
  ) {
    const { connection_limit: connectionLimit, connection_rate_limit: rateLimit } = config.client;
    // A connection still waiting for its connect command counts, so that sockets opened and never
    // used cannot push the node past the limit; each holds its place up to client.stale_close_delay.
    this.open = new OpenLimits({ section: 'client', connectionLimit, rateLimit }, () => registry.total, log, now);
    this.userLimit = config.client.user_connection_limit;
  }

  /** Connections refused since start, by limit. */
  get refused(): Readonly<Record<OpenLimit | 'user_connection_limit', number>> {
    return { ...this.open.refused, user_connection_limit: this.userRefused };
  }

  /** Whether a new connection (WebSocket, HTTP stream or SSE) may open: see OpenLimits.admit. */
  admit(): OpenLimit | undefined {
    return this.open.admit();
  }

  /** The text of a 503 answer: which limit refused the connection. */
  refusalText(limit: OpenLimit): string {
    return this.open.refusalText(limit);
  }

  /**
   * Whether `user` may hold one more connection on this node (anonymous connections are not
   * counted, as in Centrifugo); when not, the caller closes the connection with 3504.
   */
  userAllowed(user: string, client: string): boolean {
    if (this.userLimit <= 0 || user === '' || this.registry.userConnections(user) < this.userLimit) return true;
    this.userRefused++;
    this.log.info({ user, client, limit: this.userLimit }, 'limit of connections for user reached (client.user_connection_limit): disconnected (3504)');
    return false;
  }
}
