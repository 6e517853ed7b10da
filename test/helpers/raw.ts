// A raw WebSocket client for wire-level tests of the native dialect: sends frames as written,
// records every received line (parsed JSON) and the close code, and waits with bounded timeouts.
import WebSocket from 'ws';

/** One received JSON message. */
export type Msg = Record<string, any>;

/** How the socket closed. */
export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

/** A raw client of the native dialect. */
export class RawClient {
  /** Every received message, in order (a frame of several lines gives several entries). */
  readonly messages: Msg[] = [];
  /** Every received text frame, as sent by the server. */
  readonly frames: string[] = [];
  /** Set once the socket closed. */
  closeInfo: CloseInfo | undefined;
  readonly closed: Promise<CloseInfo>;
  private nextId = 1;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const text = data.toString('utf8');
      this.frames.push(isBinary ? `<binary ${data.length}>` : text);
      for (const line of text.trim().split('\n')) {
        try {
          this.messages.push(JSON.parse(line) as Msg);
        } catch {
          this.messages.push({ __unparsable: line });
        }
      }
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
        this.wake();
      });
    });
    ws.on('error', () => undefined);
  }

  /** Opens a socket to `url` (resolves once open). */
  static open(url: string, opts: { protocols?: string[]; ms?: number; ws?: WebSocket.ClientOptions } = {}): Promise<RawClient> {
    const ws = new WebSocket(url, opts.protocols ?? [], opts.ws);
    const c = new RawClient(ws);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('raw socket open timed out')), opts.ms ?? 5000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(c);
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** The next command id. */
  id(): number {
    return this.nextId++;
  }

  /** Sends commands in one frame, joined by `\n`. */
  send(...commands: Msg[]): void {
    this.ws.send(commands.map((c) => JSON.stringify(c)).join('\n'));
  }

  /** Sends a frame as is. */
  sendRaw(frame: string | Buffer): void {
    this.ws.send(frame);
  }

  /** Waits for the first message (from index `from`) matching `pred`. */
  async waitFor(pred: (m: Msg) => boolean, ms = 3000, what = 'message', from = 0): Promise<Msg> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.messages.slice(from).find(pred);
      if (found) return found;
      if (this.closeInfo) throw new Error(`socket closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${what}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for the reply to command `id`. */
  reply(id: number, ms = 3000): Promise<Msg> {
    return this.waitFor((m) => m.id === id, ms, `reply ${id}`);
  }

  /** Sends one command with a fresh id and waits for its reply. */
  async call(method: string, body: Msg = {}, ms = 3000): Promise<Msg> {
    const id = this.id();
    this.send({ id, [method]: body });
    return this.reply(id, ms);
  }

  /** Connects (optionally with a token); resolves with the reply, throws on an error reply. */
  async connect(body: Msg = {}): Promise<Msg> {
    const reply = await this.call('connect', body);
    if (reply.error) throw new Error(`connect failed: ${JSON.stringify(reply.error)}`);
    return reply.connect as Msg;
  }

  /** Pushes of a channel received so far (publications only when `kind` is 'pub'). */
  pushes(channel: string, kind = 'pub'): Msg[] {
    return this.messages.filter((m) => m.push && m.push.channel === channel && m.push[kind] !== undefined).map((m) => m.push[kind]);
  }

  /** Waits for the socket to close; fails after `ms`. */
  async waitClose(ms = 3000): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`socket not closed within ${ms} ms; got ${JSON.stringify(this.messages).slice(0, 300)}`)), ms);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the socket (no wait). */
  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Opens an HTTP stream on `url` (`POST /connection/http_stream` with `body`) and reads it up to its
 * first line: that line parsed, the text read so far, and `more()`, which reads on and returns the
 * text read so far.
 */
export async function openHttpStream(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ first: any; reader: ReadableStreamDefaultReader<Uint8Array>; more: () => Promise<string> }> {
  const res = await fetch(`${url}/connection/http_stream`, { method: 'POST', headers, body });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const more = async () => (text += decoder.decode((await reader.read()).value ?? new Uint8Array(), { stream: true }));
  for (let i = 0; i < 100 && !text.includes('\n'); i++) await more();
  return { first: JSON.parse(text.split('\n')[0]!), reader, more };
}

/**
 * What a WebSocket upgrade on `url` (with these request headers) is answered: 101 when it opens (the
 * socket is then closed), or the status and body of the refusal.
 */
export function upgradeAnswer(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve({ status: 101, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
        ws.terminate();
      });
    });
    ws.once('error', (err) => reject(err));
  });
}
