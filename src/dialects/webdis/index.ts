// The Webdis dialect: pages and publishers written for Webdis (nicolasff/webdis) work unchanged.
// Webdis channels are plain Redis channels (engine raw channels), so any Redis client's PUBLISH
// reaches them; other commands go to Redis when the Redis engine is configured. It serves on a
// listener of its own (port 7379 by default) and/or under `webdis.path_prefix` on the main port.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { OpenLimits } from '../../server/open-limits.js';
import { refuseUpgrade } from '../../server/upgrade.js';
import type { Dialect, DialectFactory, DialectServices } from '../dialect.js';
import { Acl } from './acl.js';
import { MEMORY_ENGINE_ERROR } from './commands.js';
import { Forwarder } from './forward.js';
import { WebdisHttp, type HttpContext } from './http.js';
import { WebdisListener } from './listener.js';
import { encodeJsonPush, encodeMsgpackPush, encodeRawPush, JSON_FORMAT, MSGPACK_FORMAT, PatternBudget, RAW_FORMAT } from './pubsub.js';
import { parseRedisUrl } from './resp-connection.js';
import { modeOfPath, WebdisWebSocketEndpoint, type WebSocketContext } from './websocket.js';

/** Blocking commands (BLPOP…) running at once on one node, each on its own Redis connection. */
const MAX_BLOCKING = 16;

/** Creates the Webdis dialect when `webdis.enabled`. */
export const createWebdisDialect: DialectFactory = (services) => (services.config.webdis.enabled ? new WebdisDialect(services) : undefined);

/** The Webdis dialect of one node. */
export class WebdisDialect implements Dialect {
  readonly name = 'webdis';
  readonly formats = { [JSON_FORMAT]: encodeJsonPush, [RAW_FORMAT]: encodeRawPush, [MSGPACK_FORMAT]: encodeMsgpackPush };
  private readonly forwarder: Forwarder | undefined;
  private readonly websocket: WebdisWebSocketEndpoint;
  private readonly http: WebdisHttp;
  private readonly listener: WebdisListener | undefined;
  private readonly limits: OpenLimits;

  constructor(private readonly services: DialectServices) {
    const { config, engine, hub } = services;
    const w = config.webdis;
    const log = services.log.child({ dialect: 'webdis' });
    const redis = config.engine.redis;
    const single = config.engine.type === 'redis' && redis.cluster.length === 0 && redis.url !== '';
    this.forwarder = single
      ? new Forwarder({ target: parseRedisUrl(redis.url), poolSize: w.redis_pool_size, commandTimeoutMs: redis.command_timeout, maxBlocking: MAX_BLOCKING })
      : undefined;
    const noForwardError =
      config.engine.type === 'memory'
        ? MEMORY_ENGINE_ERROR
        : 'ERR command not available: Herald forwards commands to a single Redis (engine.redis.url), not to a Redis Cluster';
    // WebSockets (those on a path without a format too) and comet streams alike.
    this.limits = new OpenLimits(
      { section: 'webdis', connectionLimit: w.connection_limit, rateLimit: w.connection_rate_limit },
      () => this.connections(),
      log,
    );
    const ctx: WebSocketContext & HttpContext = {
      engine,
      reserved: services.reservedRawName,
      hub,
      log,
      forwarder: this.forwarder,
      noForwardError,
      acl: new Acl(w.acl),
      queueMaxSize: w.queue_max_size,
      maxMessageSize: w.max_message_size,
      httpMaxBodySize: w.http_max_body_size,
      limits: this.limits,
      sandbox: w.sandbox,
      pingInterval: w.ping_interval,
      patterns: new PatternBudget(w.max_node_patterns),
    };
    this.websocket = new WebdisWebSocketEndpoint(ctx);
    this.http = new WebdisHttp(ctx);
    if (w.listen) {
      this.listener = new WebdisListener({
        maxBodySize: w.http_max_body_size,
        request: (req, res) => this.serve(req, res, req.url ?? '/'),
        upgrade: (req, socket, head) => {
          if (!this.upgrade(req, socket, head, req.url ?? '/')) refuseUpgrade(socket, 404);
        },
      });
    }
  }

  /** The port of the dialect's own listener (after start); 0 when it runs none. */
  get port(): number {
    return this.listener?.port ?? 0;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const target = this.underPrefix(req.url ?? '/');
    return target !== undefined && this.upgrade(req, socket, head, target);
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const target = this.underPrefix(req.url ?? '/');
    if (target === undefined) return false;
    await this.http.handle(req, res, target);
    return true;
  }

  async start(): Promise<void> {
    if (!this.listener) return;
    const w = this.services.config.webdis;
    const address = w.address || this.services.config.address;
    // A failure is HERALD_ERR_LISTEN like the main server's, so the CLI reports it the same way.
    await this.listener.listen(w.port, address, this.services.log);
    this.services.log.info({ port: this.port, address }, 'webdis listening');
  }

  refused(): Readonly<Record<string, number>> {
    return this.limits.refused;
  }

  /** Open WebSockets (those on a path without a format too) and comet streams: what the connection limit counts. */
  connections(): number {
    return this.websocket.held + this.http.streams;
  }

  async close(): Promise<void> {
    this.websocket.shutdown();
    this.http.shutdown();
    await this.listener?.close();
    this.forwarder?.close();
  }

  /** The request target relative to `webdis.path_prefix` on the main port, or undefined when outside it. */
  private underPrefix(url: string): string | undefined {
    const prefix = this.services.config.webdis.path_prefix;
    if (!prefix || !url.startsWith(prefix)) return undefined;
    const rest = url.slice(prefix.length);
    if (rest === '') return '/';
    if (rest[0] === '?') return `/${rest}`;
    return rest[0] === '/' ? rest : undefined;
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: string): boolean {
    if (!this.services.config.webdis.websockets) return false;
    const q = target.indexOf('?');
    this.websocket.handleUpgrade(req, socket, head, modeOfPath(q < 0 ? target : target.slice(0, q)));
    return true;
  }

  private serve(req: IncomingMessage, res: ServerResponse, target: string): void {
    this.http.handle(req, res, target).catch((err: unknown) => {
      this.services.log.error({ err, url: req.url }, 'webdis request failed');
      if (!res.headersSent) res.writeHead(500, { 'Content-Length': 0 }).end();
      else res.destroy();
    });
  }
}
