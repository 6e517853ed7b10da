// The ws4redis endpoint on the main server: upgrades on `<path_prefix><facility>` after the origin
// check, identity and safety rules (refusals are HTTP answers before any upgrade), and plain HTTP
// requests on those paths answered 400 as ws4redis answers them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { KeepAlive } from '../../server/keepalive.js';
import { OpenLimits } from '../../server/open-limits.js';
import { originAllowed, originFields } from '../../server/origin.js';
import { refuseUpgrade } from '../../server/upgrade.js';
import type { Ws4RedisContext } from './context.js';
import type { IdentityResolver } from './identity.js';
import type { SafetyRules } from './safety.js';
import { Ws4RedisSession } from './session.js';
import { facilityOf, parseRequest, type Ws4RedisRequest } from './url.js';

/** ws4redis' answer to a request on a WebSocket path that is not an upgrade. */
export const NOT_AN_UPGRADE = 'Client does not wish to upgrade to a websocket';
/** ws4redis' answer to an upgrade request with a method other than GET. */
export const NOT_A_GET = 'HTTP method must be a GET';
/** The answer to a path with a `.` or `..` segment in its facility. */
const DOT_SEGMENTS = 'A facility may not have ".." or "." segments';

/** How long shutdown waits for pending publishes, then for clients to answer the close. */
const SHUTDOWN_WAIT_MS = 2_000;

/** Accepts ws4redis WebSocket upgrades. */
export class Ws4RedisEndpoint {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<Ws4RedisSession>();
  /** Upgrades past the limits' check still waiting for their identity and rules. */
  private opening = 0;
  /** ws4redis.connection_limit and ws4redis.connection_rate_limit. */
  readonly limits: OpenLimits;
  private readonly keepAlive: KeepAlive;

  /** Open sessions. */
  get size(): number {
    return this.sessions.size;
  }
  private closing = false;

  constructor(
    private readonly ctx: Ws4RedisContext,
    private readonly identity: IdentityResolver,
    private readonly safety: SafetyRules,
    private readonly allowedOrigins: readonly string[],
  ) {
    const { connection_limit: connectionLimit, connection_rate_limit: rateLimit } = ctx.config;
    this.limits = new OpenLimits({ section: 'ws4redis', connectionLimit, rateLimit }, () => this.sessions.size + this.opening, ctx.log);
    this.keepAlive = new KeepAlive(ctx.config.ping_interval);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: ctx.config.max_message_size,
      perMessageDeflate: false,
      clientTracking: false,
      // ws4redis echoes the offered protocol; a standard server picks one of the offered values.
      handleProtocols: (protocols) => protocols.values().next().value ?? false,
    });
  }

  /** Takes an upgrade whose path is under `path_prefix`; returns false for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean {
    const parsed = parseRequest(url, this.ctx.config.path_prefix, req.url ?? '');
    if (!parsed) return false;
    // Until the upgrade completes (or is refused) a reset from the client must not throw.
    socket.on('error', ignore);
    if (parsed.facility === null) {
      refuseUpgrade(socket, 400, DOT_SEGMENTS);
      return true;
    }
    const request = { ...parsed, facility: parsed.facility };
    this.upgrade(req, socket, head, url, request).catch((err: unknown) => {
      this.ctx.log.error({ err, url: req.url }, 'ws4redis upgrade failed');
      refuseUpgrade(socket, 500);
    });
    return true;
  }

  /** Answers plain HTTP (any method) on a WebSocket path: 400, saying the client does not wish to upgrade. */
  async handleRequest(_req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (facilityOf(url.pathname, this.ctx.config.path_prefix) === undefined) return false;
    const body = NOT_AN_UPGRADE;
    res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) }).end(body);
    return true;
  }

  /** Refuses new upgrades, then closes every connection with 1001 once its pending publishes are done. */
  async shutdown(): Promise<void> {
    this.closing = true;
    this.keepAlive.stop();
    await Promise.all([...this.sessions].map((s) => s.shutdown(SHUTDOWN_WAIT_MS)));
    this.wss.close();
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, request: Ws4RedisRequest): Promise<void> {
    const log = this.ctx.log;
    if (this.closing) return refuseUpgrade(socket, 503);
    if (req.method !== 'GET') return refuseUpgrade(socket, 400, NOT_A_GET);
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refuseUpgrade(socket, 400, NOT_AN_UPGRADE);
    if (!originAllowed(req, this.allowedOrigins)) {
      log.info({ ...originFields(req), facility: request.facility }, 'ws4redis origin not allowed (see client.allowed_origins)');
      return refuseUpgrade(socket, 403);
    }
    // Checked before the identity, which may ask the application (identity_hook): a flood of
    // upgrades is turned away before it reaches it.
    const refused = this.limits.admit();
    if (refused) return refuseUpgrade(socket, 503, this.limits.refusalText(refused));
    this.opening++;
    try {
      await this.open(req, socket, head, url, request);
    } finally {
      this.opening--;
    }
  }

  /** The rest of an admitted upgrade: identity, safety rules, then the WebSocket. */
  private async open(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, request: Ws4RedisRequest): Promise<void> {
    const log = this.ctx.log;
    const who = await this.identity.resolve(req, url, request);
    if (socket.destroyed) return;
    if (!who.ok) {
      const level = who.status === 403 ? 'info' : 'warn';
      log[level]({ facility: request.facility, status: who.status, reason: who.reason }, 'ws4redis upgrade refused');
      return refuseUpgrade(socket, who.status);
    }
    const verdict = this.safety.check(request.facility, request.flags, who.identity, who.channels);
    if (!verdict.allowed) {
      log.info({ facility: request.facility, reason: verdict.reason }, 'ws4redis upgrade refused');
      return refuseUpgrade(socket, 403);
    }
    if (this.closing) return refuseUpgrade(socket, 503);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', ignore);
      this.keepAlive.watch(ws);
      const session = new Ws4RedisSession(this.ctx, ws, {
        facility: request.facility,
        flags: verdict.flags,
        echo: request.echo,
        identity: who.identity,
      });
      this.sessions.add(session);
      void session.done.then(() => this.sessions.delete(session));
      log.debug({ facility: request.facility, user: who.identity.user, subscribed: session.subscribed, publishing: session.publishing }, 'ws4redis connection');
    });
  }
}

function ignore(): void {}
