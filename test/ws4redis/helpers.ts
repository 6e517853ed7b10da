// Fixtures of the ws4redis tests: nodes with the dialect on, raw `ws` clients that keep every frame
// as bytes, a raw TCP WebSocket for frame-level checks, an identity hook served by the test, and a
// Python port of ws4redis' RedisPublisher run with Debian's redis-py.
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import type { HeraldConfigInput } from '../../src/index.js';
import { startNode, type TestNode } from '../helpers/herald.js';
import { Signal } from '../helpers/signal.js';

/** Bound of every wait in these tests. */
export const WAIT = 5000;

/** Starts a node with the ws4redis dialect on (memory engine unless `extra` says otherwise). */
export function startWs4Redis(ws4redis: NonNullable<HeraldConfigInput['ws4redis']> = {}, extra: HeraldConfigInput = {}): Promise<TestNode> {
  return startNode({ ...extra, ws4redis: { enabled: true, ...ws4redis } });
}

/** The ws4redis URL of a facility on a node: `ws://127.0.0.1:PORT/ws/<facility>?<query>`. */
export function wsUrl(node: { port: number }, facility: string, query = '', prefix = '/ws/'): string {
  return `ws://127.0.0.1:${node.port}${prefix}${facility}${query ? `?${query}` : ''}`;
}

/** One received message. */
export interface Frame {
  readonly data: Buffer;
  readonly binary: boolean;
}

/** A raw `ws` client that records every message as bytes with its frame type. */
export class W4RClient {
  readonly frames: Frame[] = [];
  closeInfo: { code: number; reason: string } | undefined;
  private readonly signal = new Signal();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      this.frames.push({ data, binary });
      this.signal.wake();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.signal.wake();
    });
    ws.on('error', () => undefined);
  }

  /** Opens a socket; rejects with the HTTP status of a refused upgrade (`err.status`). */
  static open(url: string, opts: WebSocket.ClientOptions & { protocols?: string[] } = {}): Promise<W4RClient> {
    const { protocols, ...options } = opts;
    const ws = new WebSocket(url, protocols ?? [], { handshakeTimeout: WAIT, ...options });
    const client = new W4RClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res: IncomingMessage) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  /** The received messages as text. */
  get texts(): string[] {
    return this.frames.map((f) => f.data.toString());
  }

  /** Waits until `n` messages arrived in all. */
  async waitCount(n: number, ms = WAIT): Promise<Frame[]> {
    await this.until(() => this.frames.length >= n, ms, `${n} messages (got ${JSON.stringify(this.texts)})`);
    return this.frames;
  }

  /** Waits for the socket to close. */
  async waitClose(ms = WAIT): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closeInfo !== undefined, ms, 'close');
    return this.closeInfo!;
  }

  /** Sends and waits until the bytes left this process. */
  send(data: string | Buffer, binary?: boolean): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(data, { binary: binary ?? Buffer.isBuffer(data) }, (err) => (err ? reject(err) : resolve())));
  }

  /** Closes with a handshake and waits for it to finish. */
  async close(code = 1000): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code);
    await this.waitClose();
  }

  private until(check: () => boolean, ms: number, what: string): Promise<void> {
    return this.signal.until(check, ms, (timedOut) => (timedOut ? `timed out waiting for ${what}` : undefined));
  }

}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A frame the server sent on a raw socket. */
export interface RawFrame {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** A WebSocket spoken by hand over TCP, for what `ws` refuses to send (reserved close codes). */
export class RawSocket {
  readonly frames: RawFrame[] = [];
  ended = false;
  private buf = Buffer.alloc(0);
  private readonly signal = new Signal();

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      this.parse();
      this.signal.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.signal.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Opens a TCP connection and completes the upgrade for `path` (101 expected). */
  static async open(port: number, path: string, headers: Record<string, string> = {}): Promise<RawSocket> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const key = randomBytes(16).toString('base64');
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    );
    const head = await new Promise<{ status: string; rest: Buffer }>((resolve, reject) => {
      let data = Buffer.alloc(0);
      const timer = setTimeout(() => reject(new Error('no upgrade answer')), WAIT);
      const onData = (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        socket.off('data', onData);
        resolve({ status: data.subarray(0, data.indexOf('\r\n')).toString(), rest: data.subarray(end + 4) });
      };
      socket.on('data', onData);
    });
    if (!head.status.includes(' 101 ')) throw new Error(`upgrade failed: ${head.status}`);
    const raw = new RawSocket(socket);
    if (head.rest.length) socket.emit('data', head.rest);
    return raw;
  }

  /** Sends one masked frame (FIN set). */
  sendFrame(opcode: number, payload: Buffer): void {
    this.socket.write(RawSocket.frame(opcode, payload));
  }

  /** Sends several frames in one TCP write. */
  sendFrames(frames: Array<[number, Buffer]>): void {
    this.socket.write(Buffer.concat(frames.map(([op, p]) => RawSocket.frame(op, p))));
  }

  /** A masked client frame. */
  static frame(opcode: number, payload: Buffer): Buffer {
    const mask = randomBytes(4);
    const len = payload.length;
    const header = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 255]);
    const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    return Buffer.concat([header, mask, body]);
  }

  /** A close frame payload: the code, then the reason. */
  static closePayload(code: number, reason = ''): Buffer {
    const b = Buffer.alloc(2 + Buffer.byteLength(reason));
    b.writeUInt16BE(code, 0);
    b.write(reason, 2);
    return b;
  }

  /** Waits for a frame with `opcode` (8: close); resolves with it. */
  async waitFrame(opcode: number, ms = WAIT): Promise<RawFrame> {
    const find = () => this.frames.find((x) => x.opcode === opcode);
    await this.signal.until(() => find() !== undefined, ms, (timedOut) =>
      this.ended
        ? `socket ended without a frame of opcode ${opcode}`
        : timedOut
          ? `timed out waiting for a frame of opcode ${opcode}`
          : undefined,
    );
    return find()!;
  }

  /** Waits for the server to close the TCP connection. */
  async waitEnd(ms = WAIT): Promise<void> {
    const end = Date.now() + ms;
    while (!this.ended) {
      if (Date.now() > end) throw new Error('socket not closed by the server');
      await sleep(10);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Stops reading (the server's writes pile up in the kernel and then in the server). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  private parse(): void {
    for (;;) {
      if (this.buf.length < 2) return;
      const opcode = this.buf[0]! & 0x0f;
      let len = this.buf[1]! & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buf.length < offset + len) return;
      this.frames.push({ opcode, payload: Buffer.from(this.buf.subarray(offset, offset + len)) });
      this.buf = this.buf.subarray(offset + len);
    }
  }

}

/** Sends raw HTTP and resolves with the status code and body of the answer. */
export function rawHttp(port: number, request: string): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no HTTP answer'));
    }, WAIT);
    socket.on('data', (d) => (data += d));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      const end = data.indexOf('\r\n\r\n');
      const head = end < 0 ? data : data.slice(0, end);
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 0), head, body: end < 0 ? '' : data.slice(end + 4) });
    });
    socket.write(request);
  });
}

/** One request the identity hook received. */
export interface HookCall {
  readonly method: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: any;
}

/** An identity hook served by the test on 127.0.0.1. */
export class IdentityHook {
  readonly calls: HookCall[] = [];
  private constructor(
    readonly server: Server,
    readonly url: string,
  ) {}

  /** Serves `answer` (called with each parsed request) on a free port. */
  static async start(answer: (call: HookCall, res: ServerResponse) => void | Promise<void>): Promise<IdentityHook> {
    let hook: IdentityHook | undefined;
    const server = createServer((req, res) => {
      let raw = '';
      req.on('data', (d) => (raw += d));
      req.on('end', () => {
        const call: HookCall = { method: req.method ?? '', headers: req.headers, body: raw ? JSON.parse(raw) : undefined };
        hook!.calls.push(call);
        void answer(call, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    hook = new IdentityHook(server, `http://127.0.0.1:${(server.address() as { port: number }).port}/ws-identity`);
    return hook;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

/** Answers a hook call with a JSON body. */
export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(text);
}

/**
 * A Python port of ws4redis 0.6's RedisStore/RedisPublisher (redis_store.py, publisher.py): the same
 * channel names, SELF handling, PUBLISH + SETEX per channel, and fetch_message's lookup order. Reads a
 * JSON job on stdin, prints one JSON line per operation.
 */
const PY_PUBLISHER = String.raw`
import json, sys, redis

job = json.loads(sys.stdin.read())

class settings:
    WS4REDIS_PREFIX = job.get('prefix') or None
    WS4REDIS_EXPIRE = job.get('expire', 3600)
    WS4REDIS_HEARTBEAT = job.get('heartbeat') or None

SELF = type('SELF_TYPE', (object,), {})()

class RedisMessage(bytes):
    def __new__(cls, value):
        if isinstance(value, str):
            if value != settings.WS4REDIS_HEARTBEAT:
                return super(RedisMessage, cls).__new__(cls, value.encode())
        elif isinstance(value, bytes):
            if settings.WS4REDIS_HEARTBEAT is None or value != settings.WS4REDIS_HEARTBEAT.encode():
                return super(RedisMessage, cls).__new__(cls, value)
        return None

class Request(object):
    """What ws4redis reads of a Django request: the user, its groups (ws4redis:memberof), the session key."""
    def __init__(self, d):
        d = d or {}
        self.username = d.get('user')
        self.memberof = d.get('groups') or []
        self.session_key = d.get('session')

def is_authenticated(request):
    return bool(request and request.username)

def _wrap_users(users, request):
    result = set()
    for u in users:
        if u is SELF and is_authenticated(request):
            result.add(request.username)
        else:
            result.add(u)
    return result

def _wrap_groups(groups, request):
    result = set()
    for g in groups:
        if g is SELF and is_authenticated(request):
            result.update(request.memberof)
        else:
            result.add(g)
    return result

def _wrap_sessions(sessions, request):
    result = set()
    for s in sessions:
        if s is SELF and request:
            if request.session_key:
                result.add(request.session_key)
        else:
            result.add(s)
    return result

class RedisStore(object):
    _expire = settings.WS4REDIS_EXPIRE

    def __init__(self, connection):
        self._connection = connection
        self._publishers = set()

    def publish_message(self, message, expire=None):
        if expire is None:
            expire = self._expire
        if not isinstance(message, RedisMessage):
            raise ValueError('message object is not of type RedisMessage')
        for channel in self._publishers:
            self._connection.publish(channel, message)
            if expire > 0:
                self._connection.setex(channel, expire, message)

    @staticmethod
    def get_prefix():
        return settings.WS4REDIS_PREFIX and '{0}:'.format(settings.WS4REDIS_PREFIX) or ''

    def _get_message_channels(self, request=None, facility='{facility}', broadcast=False,
                              groups=(), users=(), sessions=()):
        prefix = self.get_prefix()
        channels = []
        if broadcast is True:
            channels.append('{prefix}broadcast:{facility}'.format(prefix=prefix, facility=facility))
        channels.extend('{prefix}group:{0}:{facility}'.format(g, prefix=prefix, facility=facility)
                        for g in _wrap_groups(groups, request))
        channels.extend('{prefix}user:{0}:{facility}'.format(u, prefix=prefix, facility=facility)
                        for u in _wrap_users(users, request))
        channels.extend('{prefix}session:{0}:{facility}'.format(s, prefix=prefix, facility=facility)
                        for s in _wrap_sessions(sessions, request))
        return channels

class RedisPublisher(RedisStore):
    def __init__(self, **kwargs):
        connection = kwargs.pop('connection')
        super(RedisPublisher, self).__init__(connection)
        if kwargs:
            self._publishers = self._get_message_channels(**kwargs)

    def fetch_message(self, request, facility, audience='any'):
        prefix = self.get_prefix()
        channels = []
        if audience in ('session', 'any',):
            if request and request.session_key:
                channels.append('{prefix}session:{0}:{facility}'.format(request.session_key, prefix=prefix, facility=facility))
        if audience in ('user', 'any',):
            if is_authenticated(request):
                channels.append('{prefix}user:{0}:{facility}'.format(request.username, prefix=prefix, facility=facility))
        if audience in ('group', 'any',):
            if is_authenticated(request):
                channels.extend('{prefix}group:{0}:{facility}'.format(g, prefix=prefix, facility=facility)
                                for g in request.memberof)
        if audience in ('broadcast', 'any',):
            channels.append('{prefix}broadcast:{facility}'.format(prefix=prefix, facility=facility))
        for channel in channels:
            message = self._connection.get(channel)
            if message:
                return message

def members(values):
    return [SELF if v == '$SELF' else v for v in (values or [])]

conn = redis.StrictRedis(host='127.0.0.1', port=job['port'])
for op in job['ops']:
    if op['op'] == 'publish':
        kwargs = dict(connection=conn, facility=op['facility'], broadcast=op.get('broadcast', False),
                      groups=members(op.get('groups')), users=members(op.get('users')),
                      sessions=members(op.get('sessions')), request=Request(op.get('request')))
        message = op['message'] if 'message' in op else bytes.fromhex(op['hex'])
        RedisPublisher(**kwargs).publish_message(RedisMessage(message), op.get('expire'))
        print(json.dumps({'ok': True}))
    elif op['op'] == 'fetch':
        found = RedisPublisher(connection=conn).fetch_message(Request(op.get('request')), op['facility'], op.get('audience', 'any'))
        print(json.dumps(None if found is None else found.hex()))
    sys.stdout.flush()
`;

/** One operation of the Python publisher. */
export type PyOp =
  | {
      op: 'publish';
      facility: string;
      broadcast?: boolean;
      groups?: string[];
      users?: string[];
      sessions?: string[];
      /** Who SELF ("$SELF" in the lists) stands for. */
      request?: { user?: string; groups?: string[]; session?: string };
      message?: string;
      /** The message as hex bytes (for binary payloads). */
      hex?: string;
      expire?: number;
    }
  | { op: 'fetch'; facility: string; audience?: string; request?: { user?: string; groups?: string[]; session?: string } };

/** Runs the Python publisher against Redis on `port`; resolves with one JSON value per operation. */
export function pythonPublisher(port: number, ops: PyOp[], settings: { prefix?: string; expire?: number; heartbeat?: string } = {}): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const py = spawn('/usr/bin/python3', ['-c', PY_PUBLISHER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      py.kill('SIGKILL');
      reject(new Error(`python publisher timed out: ${err}`));
    }, 20_000);
    py.stdout.on('data', (d) => (out += d));
    py.stderr.on('data', (d) => (err += d));
    py.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`python publisher failed (${code}): ${err}`));
      resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)));
    });
    py.stdin.end(JSON.stringify({ port, ...settings, ops }));
  });
}

/** Waits until Redis reports a subscriber on each channel (Herald subscribes after the upgrade). */
export async function waitSubscribed(redis: { pubsub(...args: string[]): Promise<unknown> }, channels: string[], ms = WAIT): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const reply = (await redis.pubsub('NUMSUB', ...channels)) as Array<string | number>;
    const missing = channels.filter((_, i) => Number(reply[2 * i + 1]) < 1);
    if (missing.length === 0) return;
    if (Date.now() > end) throw new Error(`not subscribed in Redis: ${missing.join(', ')}`);
    await sleep(10);
  }
}
