// Commands other than pub/sub go to Redis over a small pool of shared, pipelined connections: a fixed
// few per node, never one per client. What would change a shared connection's state is refused, and
// blocking commands (BLPOP…) get a connection of their own for their duration, up to a bound.
import { RespConnection, RedisUnavailableError, type RedisTarget, type RespReply } from './resp-connection.js';
import { encodeResp, error, type RespValue } from './resp.js';

export { RedisUnavailableError, type RespReply } from './resp-connection.js';

/** Options of the forwarder. */
export interface ForwarderOptions {
  readonly target: RedisTarget;
  /** Shared connections. */
  readonly poolSize: number;
  /** How long a reply may take before the connection is dropped and Redis is reported unavailable. */
  readonly commandTimeoutMs: number;
  /** Blocking commands running at once, each on its own connection. */
  readonly maxBlocking: number;
}

/** Commands that change the state of the connection they run on: never sent over a shared one. */
const CONNECTION_STATE = new Set(['AUTH', 'HELLO', 'QUIT', 'RESET', 'MONITOR', 'SYNC', 'PSYNC', 'REPLCONF', 'SSUBSCRIBE', 'SUNSUBSCRIBE', 'UNWATCH']);

/** Commands that may wait on the server for a long time. */
const BLOCKING = new Set(['BLPOP', 'BRPOP', 'BRPOPLPUSH', 'BLMOVE', 'BLMPOP', 'BZPOPMIN', 'BZPOPMAX', 'BZMPOP', 'WAIT', 'WAITAOF']);

/** Sends commands to Redis. */
export class Forwarder {
  private readonly pool: RespConnection[];
  private next = 0;
  private readonly blocking = new Set<RespConnection>();

  constructor(private readonly options: ForwarderOptions) {
    const connectTimeoutMs = options.commandTimeoutMs;
    this.pool = Array.from({ length: options.poolSize }, () => new RespConnection(options.target, { connectTimeoutMs, commandTimeoutMs: options.commandTimeoutMs }));
  }

  /**
   * Runs a command on database `db` (the URL's by default). Resolves with Redis's reply (an error reply
   * included); rejects with RedisUnavailableError when Redis cannot be reached.
   */
  async call(args: readonly Buffer[], db?: number): Promise<RespReply> {
    const name = args[0]!.toString('utf8').toUpperCase();
    const refused = refusal(name, args);
    if (refused) return reply(error(refused));
    if (isBlocking(name, args)) return this.callBlocking(args, db);
    return this.pick().send(args, db);
  }

  /** Closes every connection. */
  close(): void {
    for (const c of this.pool) c.close();
    for (const c of this.blocking) c.close();
    this.blocking.clear();
  }

  private pick(): RespConnection {
    // The least busy connection; among equals, the next in turn, so load spreads when idle too.
    let best = this.pool[this.next % this.pool.length]!;
    this.next++;
    for (const c of this.pool) if (c.load < best.load) best = c;
    return best;
  }

  private async callBlocking(args: readonly Buffer[], db: number | undefined): Promise<RespReply> {
    if (this.blocking.size >= this.options.maxBlocking) {
      return reply(error(`ERR too many blocking commands in progress on this Herald node (${this.options.maxBlocking}); try again later`));
    }
    const conn = new RespConnection(this.options.target, { connectTimeoutMs: this.options.commandTimeoutMs, commandTimeoutMs: 0 });
    this.blocking.add(conn);
    try {
      return await conn.send(args, db);
    } finally {
      this.blocking.delete(conn);
      conn.close();
    }
  }
}

function reply(value: RespValue): RespReply {
  return { value, raw: encodeResp(value) };
}

/** Why a command cannot go over a shared connection, or undefined when it can. */
function refusal(name: string, args: readonly Buffer[]): string | undefined {
  const sub = args[1]?.toString('utf8').toUpperCase();
  if (CONNECTION_STATE.has(name) || (name === 'CLIENT' && (sub === 'REPLY' || sub === 'TRACKING'))) {
    return `ERR ${name}${name === 'CLIENT' ? ` ${sub}` : ''} is not available through Herald: it would change a shared Redis connection`;
  }
  return undefined;
}

function isBlocking(name: string, args: readonly Buffer[]): boolean {
  if (BLOCKING.has(name)) return true;
  if (name === 'XREAD' || name === 'XREADGROUP') return args.some((a) => a.length === 5 && a.toString('latin1').toUpperCase() === 'BLOCK');
  return false;
}

/** True for the error a forwarded command gets when Redis is unreachable. */
export function isUnavailable(err: unknown): err is RedisUnavailableError {
  return err instanceof RedisUnavailableError;
}
