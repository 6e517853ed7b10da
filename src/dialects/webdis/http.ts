// Webdis over HTTP: GET /COMMAND/arg…, POST / with the command as the body, PUT /COMMAND/arg with the
// body as the last argument; ETag and If-None-Match (304), JSONP, CORS, 403 for a refused command,
// 503 when Redis is away, 405 for other methods, and comet: GET /SUBSCRIBE/chan streams each reply
// as one chunk until the client goes away.
import * as crypto from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeader, ServerResponse } from 'node:http';
import type { Acl } from './acl.js';
import { arityError, nameTooLong, namesReserved, PUBSUB_VERBS, runCommand, verbOf, type CommandContext } from './commands.js';
import { parseCommandPath, readOptions, renderReply, type HttpCommand, type HttpOptions } from './http-command.js';
import { jsonp } from './json-codec.js';
import { PubSub, SubscribeFailedError, type PubSubContext } from './pubsub.js';
import { array, bulk, integer, type RespValue } from './resp.js';
import { Outbox, STALL_MS, type MessageStream } from '../../hub/outbox.js';
import { readBody } from '../../server/body.js';
import type { OpenLimits } from '../../server/open-limits.js';

/**
 * A reply's ETag digest (MD5, hex, as Webdis's): Node's one-shot `crypto.hash` where it has it (from
 * 20.12), which makes no hash object per reply (a Webdis command over HTTP 8% faster,
 * docs/optimisations-connections.md, "Webdis commands over HTTP"); `createHash` before.
 */
const md5Hex: (data: Buffer) => string =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('md5', data, 'hex') : (data) => crypto.createHash('md5').update(data).digest('hex');

/** What the HTTP side needs. */
export interface HttpContext extends CommandContext, PubSubContext {
  readonly acl: Acl;
  readonly httpMaxBodySize: number;
  /** webdis.connection_limit and webdis.connection_rate_limit (comet streams count). */
  readonly limits: OpenLimits;
  /** webdis.sandbox: replies from Redis are never active content on this origin. */
  readonly sandbox: boolean;
}

/**
 * Sent with every reply of a string value in a content type of the URL's choosing (`.html`, `.xhtml`,
 * `?type=`; webdis.sandbox, on by default): a value anyone could
 * write (a `PUBLISH` to a comet stream, an argument `PING` echoes) asked for as `.html`, `.xhtml` or
 * `?type=text/html` still displays, but runs no script and reads no cookie of this origin (an opaque
 * origin); `nosniff` keeps a browser from taking other types for HTML. JSON and JSONP replies (which
 * no browser runs as a page) are unchanged.
 */
const SANDBOX: readonly OutgoingHttpHeader[] = ['Content-Security-Policy', 'sandbox', 'X-Content-Type-Options', 'nosniff'];

/**
 * Webdis's CORS headers, on every response. Headers here are lists of names and values, as
 * `writeHead` also takes them: Node writes the headers of an object spread from CORS and the others at
 * a fraction of the speed of a list or a literal (a Webdis command's reply cost a third more CPU,
 * docs/optimisations-connections.md, "Webdis commands over HTTP").
 */
const CORS: readonly OutgoingHttpHeader[] = [
  'Allow', 'GET,POST,PUT,OPTIONS',
  'Access-Control-Allow-Methods', 'GET,POST,PUT,OPTIONS',
  'Access-Control-Allow-Origin', '*',
  'Access-Control-Allow-Headers', 'X-Requested-With, Content-Type, Authorization',
];

const CROSSDOMAIN =
  '<?xml version="1.0"?>\n<!DOCTYPE cross-domain-policy SYSTEM "http://www.macromedia.com/xml/dtds/cross-domain-policy.dtd">\n' +
  '<cross-domain-policy>\n<allow-access-from domain="*" />\n</cross-domain-policy>\n';

/** Answers Webdis HTTP requests. */
export class WebdisHttp {
  /** Open comet responses, each with what ends it (what its outbox holds written first). */
  private readonly comets = new Map<ServerResponse, () => void>();

  constructor(private readonly ctx: HttpContext) {}

  /** Open comet streams. */
  get streams(): number {
    return this.comets.size;
  }

  /** Answers a request whose target (path and query, raw) is relative to the Webdis root. */
  async handle(req: IncomingMessage, res: ServerResponse, target: string): Promise<void> {
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    const options = readOptions(q < 0 ? '' : target.slice(q + 1));
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') return send(res, 200, ['Content-Type', 'text/html']);
    if (method !== 'GET' && method !== 'POST' && method !== 'PUT') return send(res, 405);
    if (!options) return send(res, 400);
    if (method === 'GET' && path === '/crossdomain.xml') return send(res, 200, ['Content-Type', 'application/xml'], Buffer.from(CROSSDOMAIN));
    let command: HttpCommand | undefined;
    if (method === 'GET') {
      command = parseCommandPath(path.slice(1), options);
    } else {
      let body: Buffer | undefined;
      try {
        body = await readBody(req, this.ctx.httpMaxBodySize);
      } catch {
        res.destroy(); // the client went away mid-body: nobody to answer
        return;
      }
      if (!body) return send(res, 413, ['Connection', 'Close']);
      if (method === 'PUT') {
        // An empty body adds no argument (Webdis: `if(body && body_len)`).
        command = parseCommandPath(path.slice(1), options, body.length > 0 ? body : undefined);
      } else {
        const text = body.toString('latin1');
        const end = text.indexOf('?');
        command = parseCommandPath((end < 0 ? text : text.slice(0, end)).replace(/^\/+/, '').replace(/\r?\n$/, ''), options);
      }
    }
    // No command at all is refused, as Webdis refuses it.
    if (!command) return send(res, 403);
    return this.run(req, res, command, options);
  }

  /** Ends every comet stream (server shutdown). */
  shutdown(): void {
    for (const end of this.comets.values()) end();
    this.comets.clear();
  }

  private async run(req: IncomingMessage, res: ServerResponse, command: HttpCommand, options: HttpOptions): Promise<void> {
    const { args, db, format } = command;
    const verb = verbOf(args);
    const spelled = args[0]!.toString('utf8');
    const allowed = this.ctx.acl.permissions(req.socket.remoteAddress, req.headers.authorization);
    if (PUBSUB_VERBS.has(verb)) {
      if (!allowed(verb) || namesReserved(this.ctx.reserved, verb, args)) return send(res, 403);
      const names = args.slice(1).map((a) => a.toString('utf8'));
      if (verb.endsWith('UNSUBSCRIBE')) {
        // A request holds no subscriptions: the reply Redis gives a connection without any.
        const word = verb.toLowerCase();
        return this.reply(req, res, spelled, array([bulk(word), bulk(names[0] ?? null), integer(0)]), undefined, command, options);
      }
      if (names.length === 0) return this.reply(req, res, spelled, arityError(verb), undefined, command, options);
      const tooLong = nameTooLong(verb, args);
      if (tooLong) return this.reply(req, res, spelled, tooLong, undefined, command, options);
      return this.comet(req, res, spelled, verb === 'PSUBSCRIBE', names, command, options);
    }
    const outcome = await runCommand(this.ctx, args, allowed, db);
    if (outcome.kind === 'forbidden') return send(res, 403);
    if (outcome.kind === 'unavailable') return send(res, 503);
    return this.reply(req, res, spelled, outcome.value, outcome.raw, command, options);
  }

  private reply(
    req: IncomingMessage,
    res: ServerResponse,
    verb: string,
    value: RespValue,
    raw: Buffer | undefined,
    command: HttpCommand,
    options: HttpOptions,
  ): void {
    const rendered = renderReply(verb, value, raw, command.format, options);
    if ('status' in rendered) return send(res, rendered.status);
    const etag = `"${md5Hex(rendered.body)}"`;
    if (req.headers['if-none-match'] === etag) return send(res, 304);
    const headers: OutgoingHttpHeader[] = ['Content-Type', command.format.contentType, 'ETag', etag];
    this.addOptional(headers, command, options);
    send(res, 200, headers, rendered.body);
  }

  /**
   * Adds the headers a reply or stream carries only sometimes: `?filename=`'s, and the sandbox headers
   * for one in a format a browser may render as a page (a string value in a type of the URL's choosing).
   */
  private addOptional(headers: OutgoingHttpHeader[], command: HttpCommand, options: HttpOptions): void {
    if (options.filename) headers.push('Content-Disposition', `attachment; filename="${options.filename}"`);
    if (this.ctx.sandbox && command.format.render === 'custom') headers.push(...SANDBOX);
  }

  /** Streams the subscription's replies and messages, one chunk each, until the client leaves. */
  private async comet(
    req: IncomingMessage,
    res: ServerResponse,
    verb: string,
    pattern: boolean,
    names: readonly string[],
    command: HttpCommand,
    options: HttpOptions,
  ): Promise<void> {
    const refused = this.ctx.limits.admit();
    if (refused) return send(res, 503, ['Content-Type', 'text/plain; charset=utf-8'], Buffer.from(this.ctx.limits.refusalText(refused)));
    const max = this.ctx.queueMaxSize;
    const callback = command.format.render === 'json' ? options.jsonp : undefined;
    const start = () => {
      if (res.headersSent) return;
      // `X-Accel-Buffering: no`: nginx in front passes each reply on at once instead of buffering the stream.
      const headers: OutgoingHttpHeader[] = [...CORS, 'Content-Type', command.format.contentType, 'Cache-Control', 'no-cache', 'X-Accel-Buffering', 'no'];
      this.addOptional(headers, command, options);
      res.writeHead(200, headers);
    };
    // What the stream is sent goes through an outbox, as a WebSocket's does: a reader that does not
    // keep up is cut off rather than buffered without bound, one working through a burst is not, and
    // a message larger than the limit still goes to one that has taken everything before it.
    const outbox = new Outbox(new CometStream(res, max), { maxBytes: max, separator: null, onOverflow: () => res.destroy() });
    // Ends the stream after what the outbox holds (the last turn's messages, refusals).
    const end = () => {
      outbox.flush();
      res.end();
    };
    const pubsub = new PubSub(
      this.ctx,
      command.format.render === 'raw' ? 'raw' : command.format.render === 'msgpack' ? 'msgpack' : 'json',
      {
        write: (bytes) => {
          if (res.destroyed) return;
          start();
          outbox.push(callback ? Buffer.from(jsonp(callback, bytes.toString('utf8')), 'utf8') : bytes);
        },
        overflow: () => res.destroy(),
      },
    );
    this.comets.set(res, end);
    // Given back when the response closes, or when its connection does: a comet pipelined behind
    // another on one keep-alive connection waits in Node's queue, and its response never closes if
    // the connection goes first.
    const socket = req.socket;
    const release = () => {
      socket.off('close', release);
      if (!this.comets.delete(res)) return;
      pubsub.close();
    };
    res.on('close', release);
    socket.once('close', release);
    req.socket.setTimeout(0);
    try {
      await pubsub.subscribe(verb, pattern, names);
      // Every name refused (too many patterns): nothing will come, so the answer ends here.
      if (pubsub.count === 0) end();
    } catch (err) {
      if (!(err instanceof SubscribeFailedError)) throw err;
      this.ctx.log.debug({ err: err.message }, 'webdis comet subscribe failed');
      pubsub.close();
      if (!res.headersSent) return send(res, 503);
      end();
    }
  }
}

/**
 * A comet response as an outbox's stream: each message one chunk, as Webdis writes them. The outbox
 * judges a reader when a message comes; a comet has no pings, so one left over the limit on a
 * channel gone quiet is judged here too: cut off once it has taken nothing for STALL_MS.
 */
export class CometStream implements MessageStream {
  private stallCheck: NodeJS.Timeout | undefined;
  /** Writes made: one while a stall check waits means messages came, each judged by the outbox. */
  private writes = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxBytes: number,
  ) {}

  get readyState(): number {
    return this.res.destroyed || this.res.writableEnded ? 3 : 1;
  }

  /** Bytes written to the response and not yet sent. */
  get bufferedAmount(): number {
    return this.res.writableLength;
  }

  writeMessages(first: Buffer, rest: ReadonlyArray<Buffer | undefined> | undefined, n: number): void {
    if (n === 1) this.res.write(first);
    else {
      // Chunks of their own (a client may read one reply per chunk), gathered into one write.
      this.res.cork();
      for (let i = 0; i < n; i++) this.res.write(i === 0 ? first : rest![i - 1]!);
      this.res.uncork();
    }
    this.writes++;
    if (this.res.writableLength > this.maxBytes) this.watchStall();
  }

  private watchStall(): void {
    if (this.stallCheck) return;
    const unsent = this.res.writableLength;
    const writes = this.writes;
    this.stallCheck = setTimeout(() => {
      this.stallCheck = undefined;
      if (this.readyState !== 1) return;
      const now = this.res.writableLength;
      if (now <= this.maxBytes) return;
      if (this.writes === writes && now >= unsent) this.res.destroy();
      else this.watchStall();
    }, STALL_MS);
    this.stallCheck.unref();
  }
}

/** Reason phrases Webdis writes where Node's differ (clients and Webdis's own tests match on them). */
const WEBDIS_REASONS: Readonly<Record<number, string>> = { 413: 'Request Entity Too Large' };

/** Writes a whole response with Webdis's CORS headers, then `headers` (names and values). */
function send(res: ServerResponse, status: number, headers: readonly OutgoingHttpHeader[] = [], body?: Buffer): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const withBody = body !== undefined && status !== 304;
  res.writeHead(status, WEBDIS_REASONS[status], [...CORS, ...headers, 'Content-Length', withBody ? body.length : 0]);
  res.end(withBody ? body : undefined);
}
