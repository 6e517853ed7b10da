// A Herald node: config, engine, hub, dialects, the server API and the demo, on one HTTP server
// (its own, or one the application already has).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { pino, type Logger } from 'pino';
import { HeraldApi, HeraldApiError } from './api/client.js';
import { handleApiRequest, isApiTarget } from './api/http.js';
import { applyControl, encodeControl } from './api/control.js';
import { ChannelSurveys } from './api/survey.js';
import { apiMethods, nodeInfo, toApiError, type ApiContext } from './api/methods.js';
import { ChannelRules } from './auth/channels.js';
import { TokenVerifier } from './auth/tokens.js';
import { loadConfig } from './config/load.js';
import type { HeraldConfig, HeraldConfigInput } from './config/schema.js';
import { Demo } from './demo/demo.js';
import { encodeFullStringPush, encodePublicationPush, stringify } from './dialects/native/codec.js';
import { NATIVE_DELTA_FORMAT, NATIVE_FORMAT, type NativeContext } from './dialects/native/context.js';
import { ConnectionLimits } from './dialects/native/limits.js';
import { SharedHistoryReads } from './dialects/native/history-reads.js';
import { PositionChecker } from './dialects/native/position-check.js';
import { encodeJoinLeavePush, PresenceTracker } from './dialects/native/presence.js';
import { SessionRegistry } from './dialects/native/registry.js';
import type { NativeSession } from './dialects/native/session.js';
import { NativeWebSocketEndpoint } from './dialects/native/websocket.js';
import { NativeEmulationEndpoints, NODE_CHANNEL } from './dialects/native/emulation.js';
import type { Dialect } from './dialects/dialect.js';
import { DIALECTS } from './dialects/index.js';
import type { Engine } from './engine/engine.js';
import { MemoryEngine } from './engine/memory.js';
import { RedisEngine } from './engine/redis.js';
import { HeraldError, logFailure } from './errors.js';
import { Hub } from './hub/hub.js';
import { NodeMetrics } from './metrics.js';
import { originAllowed, originFields } from './server/origin.js';
import { listen, listeningUrl } from './server/listen.js';
import { openFileLimit, watchOpenFiles } from './server/open-files.js';
import { within } from './server/bounded.js';
import { requestFailed } from './server/failure.js';
import { refuseUpgrade } from './server/upgrade.js';
import { serveStatic } from './server/static.js';
import { VERSION } from './version.js';

/** Options of createHerald. */
export interface CreateHeraldOptions {
  /** A loaded config (from loadConfig) or raw values validated here. */
  readonly config?: HeraldConfig | HeraldConfigInput;
  /** Attach to this server instead of creating one: Herald then handles WebSocket upgrades on its
   *  paths only, and HTTP requests only when the application passes them to `herald.handleRequest`. */
  readonly server?: Server;
  /** A pino logger; by default one writing JSON lines to stdout at `log_level`. */
  readonly logger?: Logger;
}

/** A running Herald node. */
export interface Herald {
  readonly config: HeraldConfig;
  /** The HTTP server Herald listens on (its own, or the one given). */
  readonly server: Server;
  /** Starts the engine and, with its own server, listens on `address:port`. */
  start(): Promise<void>;
  /** The bound port (after start). */
  readonly port: number;
  /** The bound port of the Webdis dialect's own listener (after start); 0 when it runs none. */
  readonly webdisPort: number;
  /** Calls a server API method in-process (same methods and answers as `POST /api/<method>`);
   *  API errors throw HeraldApiError with the API code. */
  api(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Publishes in-process: `herald.publish('news', {text: 'hi'})`. */
  publish(channel: string, data: unknown): Promise<{ offset?: number; epoch?: string }>;
  /**
   * Handles an HTTP request if it is Herald's (API, HTTP streaming, SSE and `/emulation` when
   * enabled, health, metrics, dialects, demo); returns false to let the application answer.
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Closes client connections (code 3001, they reconnect), the server (if Herald's own) and the engine. */
  close(): Promise<void>;
}

/** Creates a Herald node. */
export function createHerald(options: CreateHeraldOptions = {}): Herald {
  const config = Object.isFrozen(options.config) ? (options.config as HeraldConfig) : loadConfig({ values: options.config as HeraldConfigInput });
  return new HeraldNode(config, options);
}

function createEngine(config: HeraldConfig, log: Logger): Engine {
  // channel.history_meta_ttl is Centrifugo v6's place for the same setting: when given, it wins.
  const historyMetaTtlMs = config.channel.history_meta_ttl ?? config.engine.history_meta_ttl;
  const opts = { historyMetaTtlMs, idempotentResultTtlMs: config.engine.idempotent_result_ttl };
  switch (config.engine.type) {
    case 'memory':
      return new MemoryEngine(opts);
    case 'redis': {
      const r = config.engine.redis;
      return new RedisEngine({
        ...opts,
        url: r.url || undefined,
        cluster: r.cluster,
        prefix: r.prefix,
        commandTimeoutMs: r.command_timeout,
        shardedPubsub: r.sharded_pubsub,
        log: log.child({ component: 'redis' }),
      });
    }
  }
}

class HeraldNode implements Herald {
  readonly server: Server;
  private readonly ownServer: boolean;
  private readonly log: Logger;
  private readonly engine: Engine;
  private readonly hub: Hub;
  private readonly presence: PresenceTracker;
  private readonly positions: PositionChecker;
  private readonly native: NativeWebSocketEndpoint;
  private readonly emulation: NativeEmulationEndpoints;
  private readonly apiCtx: ApiContext;
  private readonly metrics: NodeMetrics | undefined;
  private demo: Demo | undefined;
  private readonly dialects: Dialect[] = [];
  private started = false;
  private announceTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly config: HeraldConfig,
    options: CreateHeraldOptions,
  ) {
    // Frozen and in place: neither its keys nor the property itself can be assigned.
    Object.defineProperty(this, 'config', { value: config, writable: false, enumerable: true, configurable: false });
    // Written synchronously: a line is out when the call returns, so lines keep their order and none
    // is lost when the process exits (pino's default writes later, and one line held back by a full
    // pipe was written after the next, or not at all). Herald logs events, not traffic.
    this.log = options.logger ?? pino({ level: config.log_level, base: { service: 'herald' } }, pino.destination({ dest: process.stdout.fd, sync: true }));
    this.engine = createEngine(config, this.log);
    this.hub = new Hub(this.engine, { [NATIVE_FORMAT]: encodePublicationPush, [NATIVE_DELTA_FORMAT]: encodeFullStringPush });
    this.hub.registerJoinLeaveFormat(NATIVE_FORMAT, encodeJoinLeavePush);
    this.hub.registerJoinLeaveFormat(NATIVE_DELTA_FORMAT, encodeJoinLeavePush);
    this.presence = new PresenceTracker(this.engine, config.engine.presence_ttl, config.client.presence_update_interval, this.log.child({ component: 'presence' }));
    const rules = new ChannelRules(config.channel, config.channel.max_length ?? config.client.channel_max_length);
    const registry = new SessionRegistry<NativeSession>();
    const subToken = config.client.subscription_token;
    // One verifier per key set: a JWKS endpoint is fetched and cached once, whoever checks tokens.
    const connectionTokens = new TokenVerifier(config.client.token);
    const nodeId = randomUUID();
    const nativeLog = this.log.child({ dialect: 'native' });
    const limits = new ConnectionLimits(config, registry, nativeLog);
    const nativeCtx: NativeContext = {
      config,
      engine: this.engine,
      hub: this.hub,
      rules,
      connectionTokens,
      subscriptionTokens: subToken.enabled ? new TokenVerifier(subToken) : connectionTokens,
      registry,
      presence: this.presence,
      historyReads: new SharedHistoryReads(this.engine),
      limits,
      log: nativeLog,
      version: VERSION,
      nodeId,
      positionMaxTimeLag: config.client.channel_position_max_time_lag,
      resyncs: { gap: 0, position_check: 0, time_lag: 0, engine: 0 },
    };
    this.native = new NativeWebSocketEndpoint(nativeCtx);
    this.positions = new PositionChecker(nativeCtx, config.client.channel_position_check_delay);
    this.emulation = new NativeEmulationEndpoints(nativeCtx, (message, node) => this.engine.publishControl(encodeControl(message), node));
    if (config.metrics.enabled) {
      this.metrics = new NodeMetrics({
        hub: this.hub,
        connections: () => this.connectionCount(),
        users: () => registry.users,
        refused: () => this.refusedConnections(limits),
        resyncs: nativeCtx.resyncs,
      });
    }
    this.apiCtx = {
      config,
      engine: this.engine,
      hub: this.hub,
      rules,
      registry,
      log: this.log.child({ component: 'api' }),
      connections: () => this.connectionCount(),
      countCall: this.metrics ? (method, result) => this.metrics!.apiCalls.inc({ method, result }) : undefined,
      node: { uid: nodeId, name: process.env.HOSTNAME || 'herald', version: VERSION, startedAt: Date.now() },
      surveys: new ChannelSurveys(this.engine, this.hub, nodeId, (method, params, node) => this.engine.publishControl(encodeControl({ method, params }), node), this.log.child({ component: 'api' })),
    };
    this.ownServer = !options.server;
    this.server = options.server ?? createServer((req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => {
      try {
        this.onUpgrade(req, socket, head);
      } catch (err) {
        this.log.error({ err, url: req.url }, 'upgrade failed');
        refuseUpgrade(socket, 500);
      }
    });
    const reservedRawName = (name: string) => this.engine.reservedName(name) || this.dialects.some((d) => d.ownsRawName?.(name) === true);
    const services = { config, engine: this.engine, hub: this.hub, log: this.log, server: this.server, tokens: connectionTokens, reservedRawName };
    for (const factory of DIALECTS) {
      const dialect = factory(services);
      if (!dialect) continue;
      for (const [format, encoder] of Object.entries(dialect.formats ?? {})) this.hub.registerFormat(format, encoder);
      this.dialects.push(dialect);
    }
  }

  /** Connections each dialect's limits refused since start, by limit. */
  private refusedConnections(native: ConnectionLimits): Record<string, Readonly<Record<string, number>>> {
    const counts: Record<string, Readonly<Record<string, number>>> = { native: native.refused };
    for (const d of this.dialects) {
      const refused = d.refused?.();
      if (refused) counts[d.name] = refused;
    }
    return counts;
  }

  /** Client connections of every dialect on this node. */
  private connectionCount(): number {
    let n = this.apiCtx.registry.size;
    for (const d of this.dialects) n += d.connections?.() ?? 0;
    return n;
  }

  get port(): number {
    const addr = this.server.address() as AddressInfo | null;
    return addr ? addr.port : 0;
  }

  get webdisPort(): number {
    const webdis = this.dialects.find((d) => d.name === 'webdis') as { readonly port?: number } | undefined;
    return webdis?.port ?? 0;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.config.client.insecure) {
      this.log.warn('INSECURE client mode (client.insecure): native clients connect without a token and may subscribe, publish, and read history and presence where the namespace options would refuse them; for development only');
    }
    const controlLog = this.log.child({ component: 'control' });
    await this.engine.start({
      onPublication: (channel, pub, position) => this.hub.onPublication(channel, pub, position),
      onResync: (channels) => this.hub.onResync(channels),
      // Nothing a control message holds may throw into the engine's handler (it would end the process).
      onControl: (message) => {
        try {
          applyControl(this.apiCtx.registry, message, controlLog, this.apiCtx.node.uid, this.apiCtx.surveys);
        } catch (err) {
          controlLog.error({ err }, 'a control message failed');
        }
      },
      onJoinLeave: (channel, kind, info) => this.hub.onJoinLeave(channel, kind, info),
      node: this.apiCtx.node.uid,
    });
    this.announce();
    this.positions.start();
    for (const dialect of this.dialects) await dialect.start?.();
    if (this.ownServer) await listen(this.server, this.config.port, this.config.address, this.log);
    // On the application's server too: its connections are this process's files all the same.
    else watchOpenFiles(this.server, this.log);
    if (this.config.demo.enabled) this.startDemo();
    // On the application's server, which listens when the application says: no port of Herald's to tell.
    const where = this.ownServer ? { port: this.port } : { embedded: true };
    this.log.info({ ...where, engine: this.engine.name, demo: this.config.demo.enabled, open_file_limit: openFileLimit() }, 'herald started');
  }

  async api(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const fn = Object.hasOwn(apiMethods, method) ? apiMethods[method] : undefined;
    if (!fn) throw new HeraldError('HERALD_ERR_API', `unknown API method ${method}`);
    let result: Record<string, unknown>;
    try {
      result = await fn(this.apiCtx, params);
    } catch (err) {
      const e = toApiError(err);
      if (e.code === 100) logFailure(this.log, err, { method }, 'API method failed');
      throw new HeraldApiError(e.code, e.message);
    }
    // The same plain JSON values the HTTP API answers (payloads parsed, not raw bytes).
    return JSON.parse(stringify(result)) as Record<string, unknown>;
  }

  publish(channel: string, data: unknown): Promise<{ offset?: number; epoch?: string }> {
    return this.api('publish', { channel, data });
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const target = req.url ?? '/';
    if (isApiTarget(target)) {
      // Resolves once the answer is out (or the client gone), as the other routes' promises do.
      return new Promise((resolve) => {
        res.once('close', () => resolve(true));
        handleApiRequest(this.apiCtx, req, res);
      });
    }
    let url: URL;
    try {
      url = new URL(target, 'http://localhost');
    } catch {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad request target\n');
      return true;
    }
    if (this.metrics && url.pathname === this.config.metrics.path && req.method === 'GET') {
      const body = await this.metrics.registry.metrics();
      res.writeHead(200, { 'Content-Type': this.metrics.registry.contentType }).end(body);
      return true;
    }
    if (url.pathname === '/health') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      return true;
    }
    if (url.pathname === '/ready') {
      // For a load balancer's readiness check: 503 while the engine does not answer (Redis down,
      // stopped, or slower than READY_WAIT_MS), so traffic goes to nodes that can serve it.
      let failure: string | undefined = `no answer within ${READY_WAIT_MS} ms`;
      const answered = this.engine.ping().then(
        () => (failure = undefined),
        (err: unknown) => (failure = (err as Error).message),
      );
      await within(answered, READY_WAIT_MS);
      const status = failure === undefined ? 200 : 503;
      const body = failure === undefined ? { engine: this.engine.name } : { engine: this.engine.name, error: failure };
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(body));
      return true;
    }
    if (this.emulation.handleRequest(req, res, url)) return true;
    for (const dialect of this.dialects) if (dialect.handleRequest && (await dialect.handleRequest(req, res, url))) return true;
    if (this.demo && url.pathname === '/demo/jobs') {
      await this.demo.handle(req, res);
      return true;
    }
    if (this.config.demo.enabled) return serveStatic(req, res, url.pathname);
    return false;
  }

  /** Tells the other nodes this one is alive (for `info`), every few seconds. */
  private announce(): void {
    // With the flag saying this node listens on a control channel of its own (emulation.ts).
    this.engine.announce({ ...nodeInfo(this.apiCtx), [NODE_CHANNEL]: true }, ANNOUNCE_TTL_MS).catch((err) => this.log.debug({ err: (err as Error).message }, 'node announce failed'));
    this.announceTimer = setTimeout(() => this.announce(), ANNOUNCE_INTERVAL_MS);
    this.announceTimer.unref();
  }

  async close(): Promise<void> {
    this.log.info({ connections: this.connectionCount() }, 'herald stopping');
    if (this.announceTimer) clearTimeout(this.announceTimer);
    // Other nodes' `info` stops listing this one now, not when its announcement expires; sent first,
    // while the rest closes, and not waited for past a moment (Redis may be what is failing).
    const withdrawn = this.engine.withdraw(this.apiCtx.node.uid).catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'node withdraw failed'));
    this.demo?.stop();
    this.native.shutdown();
    this.presence.close();
    this.positions.close();
    for (const dialect of this.dialects) await dialect.close?.().catch((err: unknown) => this.log.warn({ err, dialect: dialect.name }, 'dialect close failed'));
    if (this.ownServer) {
      this.server.closeAllConnections?.();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }
    await within(withdrawn, WITHDRAW_WAIT_MS);
    await this.engine.close();
    this.log.info('herald stopped');
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    // API calls are routed on the raw target, with no URL object nor async layer per call: they come
    // by the thousand a second (handleApiRequest answers every one itself).
    if (isApiTarget(req.url ?? '/')) return handleApiRequest(this.apiCtx, req, res);
    void this.onOtherRequest(req, res);
  }

  private async onOtherRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (await this.handleRequest(req, res)) return;
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    } catch (err) {
      requestFailed(this.log, req, res, err);
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return refuseUpgrade(socket, 400);
    }
    if (url.pathname !== this.config.client.websocket_path) {
      for (const dialect of this.dialects) if (dialect.handleUpgrade?.(req, socket, head, url)) return;
      // On the application's server, other paths belong to the application.
      if (this.ownServer) refuseUpgrade(socket, 404);
      return;
    }
    if (!originAllowed(req, this.config.client.allowed_origins)) {
      this.log.info(originFields(req), 'websocket origin not allowed (see client.allowed_origins)');
      return refuseUpgrade(socket, 403);
    }
    this.native.handleUpgrade(req, socket, head, url);
  }

  private startDemo(): void {
    const key = this.config.http_api.key;
    if (!this.ownServer || (!key && !this.config.http_api.insecure)) {
      this.log.warn('demo disabled: it needs Herald\'s own server and an http_api.key to publish through the API');
      return;
    }
    const api = new HeraldApi(listeningUrl(this.config.address, this.port, '127.0.0.1'), key);
    this.demo = new Demo(
      api,
      { stepDelayMs: this.config.demo.job_step_delay, dashboardMaxIntervalMs: this.config.demo.dashboard_max_interval },
      this.log.child({ component: 'demo' }),
    );
    this.demo.start();
  }
}

const ANNOUNCE_INTERVAL_MS = 3_000;
const ANNOUNCE_TTL_MS = 10_000;
/** How long closing waits for the withdrawal of the node's announcement before it closes the engine anyway. */
const WITHDRAW_WAIT_MS = 500;
/** How long `/ready` waits for the engine to answer. */
const READY_WAIT_MS = 2_000;

