// One raw RESP connection to Redis, pipelined: commands are written as they come and replies are
// matched to them in order. Raw rather than ioredis because a Webdis reply depends on the reply's
// type (status `+OK` → [true,"OK"], bulk `$2 OK` → "OK") and `/.raw` clients get Redis's bytes as
// they are; ioredis folds both types into strings.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { encodeCommand, RespReader, RespSyntaxError, type RespValue } from './resp.js';

/** Where a connection goes, read from a `redis://` or `rediss://` URL. */
export interface RedisTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
  /** The database selected on connect (the URL's path). */
  readonly db: number;
}

/** Reads `redis://[user:password@]host:port[/db]`. */
export function parseRedisUrl(url: string): RedisTarget {
  const u = new URL(url);
  const db = Number(u.pathname.replace(/^\//, '') || 0);
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(u.port || 6379),
    tls: u.protocol === 'rediss:',
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) && db >= 0 ? db : 0,
  };
}

/** A reply and its exact bytes. */
export interface RespReply {
  readonly value: RespValue;
  readonly raw: Buffer;
}

/** Redis could not be reached, or stopped answering. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

/** Options of a connection. */
export interface RespConnectionOptions {
  readonly connectTimeoutMs: number;
  /** How long a reply may take; 0: no limit (blocking commands). */
  readonly commandTimeoutMs: number;
}

interface Pending {
  readonly resolve: (reply: RespReply) => void;
  readonly reject: (err: Error) => void;
  readonly deadline: number;
}

interface Queued {
  readonly args: readonly Buffer[];
  readonly db: number;
  readonly pending: Pending;
}

/**
 * A pipelined connection, opened on first use and again after it broke. A command for another
 * database than the current one waits for its SELECT to succeed, so a failed SELECT never lets the
 * command run on the wrong database.
 */
export class RespConnection {
  private socket: Socket | undefined;
  private reader = new RespReader();
  /** Written and awaiting their replies, in order. */
  private inflight: Pending[] = [];
  /** Not yet written (only while a SELECT is awaited). */
  private queue: Queued[] = [];
  private selecting = false;
  /** The database in effect after everything written so far. */
  private db: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly target: RedisTarget,
    private readonly options: RespConnectionOptions,
  ) {
    this.db = target.db;
  }

  /** Commands written or waiting: the pool sends to the least busy connection. */
  get load(): number {
    return this.inflight.length + this.queue.length;
  }

  /** Sends a command (on database `db`, the URL's by default) and resolves with its reply. */
  send(args: readonly Buffer[], db = this.target.db): Promise<RespReply> {
    if (this.closed) return Promise.reject(new RedisUnavailableError('the connection is closed'));
    return new Promise((resolve, reject) => {
      const deadline = this.options.commandTimeoutMs > 0 ? Date.now() + this.options.commandTimeoutMs : 0;
      this.queue.push({ args, db, pending: { resolve, reject, deadline } });
      this.pump();
    });
  }

  /** Closes the connection; what is pending fails. */
  close(): void {
    this.closed = true;
    this.fail(new RedisUnavailableError('the connection is closed'));
  }

  private pump(): void {
    const socket = this.socket ?? this.open();
    while (!this.selecting && this.queue.length > 0) {
      const next = this.queue[0]!;
      if (next.db !== this.db) {
        this.selecting = true;
        const wanted = next.db;
        this.write(socket, [Buffer.from('SELECT'), Buffer.from(String(wanted))], {
          deadline: next.pending.deadline,
          resolve: ({ value }) => {
            this.selecting = false;
            if (value.type === 'error') {
              this.queue.shift();
              next.pending.resolve({ value, raw: Buffer.from(`-${value.text}\r\n`) });
            } else {
              this.db = wanted;
            }
            this.pump();
          },
          reject: () => undefined, // the connection failed: `fail` rejects the queued command itself
        });
        return;
      }
      this.queue.shift();
      this.write(socket, next.args, next.pending);
    }
  }

  private write(socket: Socket, args: readonly Buffer[], pending: Pending): void {
    this.inflight.push(pending);
    socket.write(encodeCommand(args));
    this.armTimer();
  }

  private open(): Socket {
    const { host, port, tls } = this.target;
    const socket = tls ? tlsConnect({ host, port, servername: host }) : netConnect({ host, port });
    this.socket = socket;
    this.reader = new RespReader();
    this.db = 0;
    socket.setNoDelay(true);
    socket.setTimeout(this.options.connectTimeoutMs, () => socket.destroy(new Error('connect timed out')));
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.setTimeout(0));
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    let cause = 'connection lost';
    socket.on('error', (err) => (cause = err.message)); // 'close' follows and fails what is pending
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.fail(new RedisUnavailableError(`redis ${host}:${port}: ${cause}`));
    });
    // Authenticate before anything else; these replies are checked like any other.
    const { username, password } = this.target;
    if (password !== undefined) {
      const auth = username ? ['AUTH', username, password] : ['AUTH', password];
      this.write(socket, auth.map((a) => Buffer.from(a)), this.setupStep(socket, 'AUTH'));
    }
    return socket;
  }

  /** A connection-setup reply: an error there makes the connection unusable. */
  private setupStep(socket: Socket, what: string): Pending {
    return {
      deadline: Date.now() + this.options.connectTimeoutMs,
      resolve: ({ value }) => {
        if (value.type === 'error') socket.destroy(new Error(`redis ${what} failed: ${value.text}`));
      },
      reject: () => undefined,
    };
  }

  private onData(socket: Socket, chunk: Buffer): void {
    this.reader.feed(chunk);
    for (;;) {
      let reply: RespReply | undefined;
      try {
        reply = this.reader.next();
      } catch (err) {
        if (err instanceof RespSyntaxError) socket.destroy(err);
        return;
      }
      if (!reply) break;
      const pending = this.inflight.shift();
      if (!pending) {
        socket.destroy(new Error('redis sent a reply nobody asked for'));
        return;
      }
      pending.resolve(reply);
    }
    this.armTimer();
  }

  /** One timer for the oldest command written: a reply that does not come in time breaks the connection. */
  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const head = this.inflight.find((p) => p.deadline > 0);
    if (!head) return;
    const socket = this.socket;
    this.timer = setTimeout(() => socket?.destroy(new Error('redis did not answer in time')), Math.max(0, head.deadline - Date.now()));
    this.timer.unref();
  }

  private fail(err: Error): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.selecting = false;
    const inflight = this.inflight;
    const queue = this.queue;
    this.inflight = [];
    this.queue = [];
    for (const p of inflight) p.reject(err);
    for (const q of queue) q.pending.reject(err);
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
  }
}
