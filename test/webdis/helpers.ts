// Fixtures of the Webdis tests: Herald nodes with the dialect on a free port, a raw `ws` client that
// records every frame as the server sent it, a TCP-level WebSocket client for handshakes and frame
// bytes, and plain HTTP requests. Every wait is bounded.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import type { HeraldConfigInput } from '../../src/index.js';
import { startNode, type TestNode } from '../helpers/herald.js';
import { Signal } from '../helpers/signal.js';

/** A node with the Webdis dialect listening on a free port of 127.0.0.1. */
export interface WebdisNode extends TestNode {
  readonly webdisPort: number;
  /** `ws://127.0.0.1:<webdis port>` */
  readonly wsBase: string;
  /** `http://127.0.0.1:<webdis port>` */
  readonly httpBase: string;
}

/** Starts a node with `webdis.enabled`, port 0, and the given extra config (logging to `logger` when given). */
export async function startWebdis(extra: HeraldConfigInput = {}, logger?: Logger): Promise<WebdisNode> {
  const webdis = { enabled: true, port: 0, ...(extra.webdis ?? {}) };
  const node = await startNode({ ...extra, webdis }, logger);
  const port = node.herald.webdisPort;
  return { ...node, webdisPort: port, wsBase: `ws://127.0.0.1:${port}`, httpBase: `http://127.0.0.1:${port}` };
}

/** ACL rules opening every command to 127.0.0.1 (what a Redis-engine test usually wants). */
export const OPEN_LOCAL = [{ ip: '127.0.0.1', enabled: ['*'] }];

/** A WebSocket client that keeps every server frame, in order, as text. */
export class WdClient {
  readonly frames: string[] = [];
  /** Whether each frame arrived as binary (Webdis sends text frames only). */
  readonly binary: boolean[] = [];
  closeInfo: { code: number; reason: string } | undefined;
  private read = 0;
  private readonly signal = new Signal();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.frames.push(data.toString('utf8'));
      this.binary.push(isBinary);
      this.signal.wake();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.signal.wake();
    });
    ws.on('error', () => undefined);
  }

  /** Opens a socket (resolves once open). */
  static open(url: string, options: WebSocket.ClientOptions = {}): Promise<WdClient> {
    const ws = new WebSocket(url, options);
    const c = new WdClient(ws);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`open ${url} timed out`)), 5000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(c);
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Sends a command as a JSON array. */
  send(...args: unknown[]): void {
    this.ws.send(JSON.stringify(args));
  }

  /** Sends a frame as is (text unless a Buffer with `binary`). */
  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The next frame not read yet. */
  async next(ms = 3000): Promise<string> {
    await this.until(() => this.frames.length > this.read, ms, 'a frame');
    return this.frames[this.read++]!;
  }

  /** The next frame, parsed as JSON. */
  async json(ms = 3000): Promise<any> {
    const f = await this.next(ms);
    try {
      return JSON.parse(f);
    } catch {
      throw new Error(`not JSON: ${f.slice(0, 200)}`);
    }
  }

  /** Sends a JSON command and returns the next frame parsed. */
  async call(...args: unknown[]): Promise<any> {
    this.send(...args);
    return this.json();
  }

  /** The next `n` frames. */
  async take(n: number, ms = 5000): Promise<string[]> {
    const out: string[] = [];
    const end = Date.now() + ms;
    for (let i = 0; i < n; i++) out.push(await this.next(Math.max(1, end - Date.now())));
    return out;
  }

  /** Resolves when no further frame arrives within `ms` (fails if one does). */
  async quiet(ms = 200): Promise<void> {
    const before = this.frames.length;
    await new Promise((r) => setTimeout(r, ms));
    if (this.frames.length !== before) throw new Error(`unexpected frame: ${this.frames[before]!.slice(0, 200)}`);
  }

  /** Waits for the close; resolves with its code and reason. */
  async waitClose(ms = 3000): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closeInfo !== undefined, ms, 'close');
    return this.closeInfo!;
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }

  private until(check: () => boolean, ms: number, what: string): Promise<void> {
    return this.signal.until(check, ms, (timedOut) => {
      if (this.closeInfo) return `socket closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${what}`;
      if (timedOut) return `timed out waiting for ${what}; frames so far: ${JSON.stringify(this.frames.slice(-5)).slice(0, 400)}`;
      return undefined;
    });
  }

}

/** One WebSocket frame as read from the wire. */
export interface WireFrame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly masked: boolean;
  readonly payload: Buffer;
  /** The whole frame's bytes. */
  readonly bytes: Buffer;
}

/** A TCP connection speaking WebSocket by hand: handshakes as written, frames as bytes. */
export class TcpWs {
  private buf = Buffer.alloc(0);
  private readonly signal = new Signal();
  ended = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.signal.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.signal.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects to 127.0.0.1:port. */
  static connect(port: number): Promise<TcpWs> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      const timer = setTimeout(() => reject(new Error('connect timed out')), 3000);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(new TcpWs(s));
      });
      s.once('error', reject);
    });
  }

  /** Sends a handshake as written and resolves with the response head (status line and headers). */
  async handshake(head: string, ms = 3000): Promise<string> {
    this.socket.write(head);
    await this.until(() => this.buf.indexOf('\r\n\r\n') >= 0, ms, 'the handshake response');
    const end = this.buf.indexOf('\r\n\r\n');
    const response = this.buf.toString('latin1', 0, end);
    this.buf = this.buf.subarray(end + 4);
    return response;
  }

  /** What arrived and was not read yet, as text. */
  pending(): string {
    return this.buf.toString('utf8');
  }

  /** Writes bytes as they are. */
  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** The next whole frame from the server. */
  async frame(ms = 3000): Promise<WireFrame> {
    let parsed: WireFrame | undefined;
    await this.until(() => (parsed = parseFrame(this.buf)) !== undefined, ms, 'a frame');
    this.buf = this.buf.subarray(parsed!.bytes.length);
    return parsed!;
  }

  /** Resolves once the server closed the TCP connection. */
  async closed(ms = 3000): Promise<void> {
    await this.until(() => this.ended, ms, 'the TCP close');
  }

  destroy(): void {
    this.socket.destroy();
  }

  private until(check: () => boolean, ms: number, what: string): Promise<void> {
    return this.signal.until(check, ms, (timedOut) =>
      timedOut || this.ended
        ? `${this.ended ? 'connection closed' : 'timed out'} waiting for ${what}; have ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`
        : undefined,
    );
  }

}

/** Parses one frame at the start of `buf`; undefined when incomplete. */
export function parseFrame(buf: Buffer): WireFrame | undefined {
  if (buf.length < 2) return undefined;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const maskAt = at;
  if (masked) at += 4;
  if (buf.length < at + len) return undefined;
  let payload: Buffer = Buffer.from(buf.subarray(at, at + len));
  if (masked) payload = payload.map((b, i) => b ^ buf[maskAt + (i % 4)]!) as Buffer;
  return { fin: (buf[0]! & 0x80) !== 0, opcode: buf[0]! & 0x0f, masked, payload, bytes: Buffer.from(buf.subarray(0, at + len)) };
}

/** A client frame: masked unless `mask` is false. */
export function clientFrame(opcode: number, payload: Buffer | string, mask = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const len = data.length;
  const head: number[] = [0x80 | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) head.push(maskBit | 126, len >> 8, len & 0xff);
  else {
    head.push(maskBit | 127);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(len));
    head.push(...b);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = randomBytes(4);
  const masked = Buffer.from(data.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** A minimal hand-written handshake, as some Webdis clients send it. */
export function minimalHandshake(path: string, extraLines: string[] = [], key = 'dGhlIHNhbXBsZSBub25jZQ=='): string {
  return [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, ...extraLines, '', ''].join('\r\n');
}

/** A response read whole. */
export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  readonly text: string;
}

/** One HTTP request to 127.0.0.1:port with a bounded wait. */
export function http(
  port: number,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer; ms?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${method} ${path} timed out`));
    }, options.ms ?? 5000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(options.body);
  });
}

/** The status of a GET (a comet stream included: the connection is dropped once the head is in). */
export function httpStatus(port: number, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      clearTimeout(timer);
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`GET ${path} timed out`));
    }, 5000);
    req.on('error', () => undefined);
    req.end();
  });
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
