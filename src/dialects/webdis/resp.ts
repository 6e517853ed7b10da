// RESP2, the Redis wire format: the one definition of it in the Webdis dialect. Replies keep their
// type (status vs bulk string matters to the JSON rendering), and a parsed reply remembers its bytes
// so `/.raw` clients get them exactly as Redis sent them.

/** One RESP2 value. Integers stay decimal text so 64-bit values keep every digit. */
export type RespValue =
  | { readonly type: 'status'; readonly text: string }
  | { readonly type: 'error'; readonly text: string }
  | { readonly type: 'integer'; readonly text: string }
  | { readonly type: 'bulk'; readonly data: Buffer | null }
  | { readonly type: 'array'; readonly items: readonly RespValue[] | null };

/** A status reply (`+OK`). */
export const status = (text: string): RespValue => ({ type: 'status', text });
/** An error reply (`-ERR …`). */
export const error = (text: string): RespValue => ({ type: 'error', text });
/** An integer reply. */
export const integer = (n: number | bigint | string): RespValue => ({ type: 'integer', text: String(n) });
/** A bulk string reply; null is the nil reply. */
export const bulk = (data: Buffer | string | null): RespValue => ({ type: 'bulk', data: typeof data === 'string' ? Buffer.from(data) : data });
/** An array reply. */
export const array = (items: readonly RespValue[] | null): RespValue => ({ type: 'array', items });

const CRLF = Buffer.from('\r\n');

/** Encodes a value as RESP2. */
export function encodeResp(value: RespValue): Buffer {
  const parts: Buffer[] = [];
  write(value, parts);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function write(v: RespValue, out: Buffer[]): void {
  switch (v.type) {
    case 'status':
      out.push(Buffer.from(`+${oneLine(v.text)}\r\n`));
      return;
    case 'error':
      out.push(Buffer.from(`-${oneLine(v.text)}\r\n`));
      return;
    case 'integer':
      out.push(Buffer.from(`:${v.text}\r\n`));
      return;
    case 'bulk':
      if (v.data === null) out.push(Buffer.from('$-1\r\n'));
      else out.push(Buffer.from(`$${v.data.length}\r\n`), v.data, CRLF);
      return;
    case 'array':
      if (v.items === null) {
        out.push(Buffer.from('*-1\r\n'));
        return;
      }
      out.push(Buffer.from(`*${v.items.length}\r\n`));
      for (const item of v.items) write(item, out);
  }
}

/** Status and error texts are one line on the wire. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/** Encodes a command as Redis expects it: an array of bulk strings. */
export function encodeCommand(args: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`), a, CRLF);
  return Buffer.concat(parts);
}

/** The input is not RESP. */
export class RespSyntaxError extends Error {
  override readonly name = 'RespSyntaxError';
}

/** A parsed value and where it ends; `undefined` from the parser means "not all bytes are here yet". */
interface Parsed {
  readonly value: RespValue;
  readonly end: number;
}

/** One element's header: a whole scalar, or the start of an array of `count` elements. */
type Head = Parsed | { readonly count: number; readonly end: number };

/** Deepest nesting accepted: Redis replies nest a few levels; anything deeper is hostile input. */
const MAX_DEPTH = 32;

/** Parses the element starting at `pos` (an array only up to its count); undefined when incomplete. */
function parseHead(buf: Buffer, pos: number): Head | undefined {
  if (pos >= buf.length) return undefined;
  const eol = buf.indexOf(CRLF, pos + 1);
  if (eol < 0) {
    if (buf.length - pos > 64 * 1024) throw new RespSyntaxError('RESP line too long');
    return undefined;
  }
  const kind = buf[pos];
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  switch (kind) {
    case 0x2b: // +
      return { value: status(line), end: next };
    case 0x2d: // -
      return { value: error(line), end: next };
    case 0x3a: // :
      if (!/^-?\d+$/.test(line)) throw new RespSyntaxError(`bad RESP integer ${JSON.stringify(line)}`);
      return { value: { type: 'integer', text: line }, end: next };
    case 0x24: {
      // $
      const len = lengthOf(line);
      if (len < 0) return { value: bulk(null), end: next };
      if (buf.length < next + len + 2) return undefined;
      if (buf[next + len] !== 0x0d || buf[next + len + 1] !== 0x0a) throw new RespSyntaxError('bulk string not followed by CRLF');
      return { value: bulk(buf.subarray(next, next + len)), end: next + len + 2 };
    }
    case 0x2a: // *
      return { count: lengthOf(line), end: next };
    default:
      throw new RespSyntaxError(`unexpected RESP type byte 0x${(kind ?? 0).toString(16).padStart(2, '0')}`);
  }
}

/** Parses one whole value starting at `pos`; undefined when incomplete, throws RespSyntaxError when invalid. */
export function parseValue(buf: Buffer, pos: number, depth = 0): Parsed | undefined {
  const head = parseHead(buf, pos);
  if (!head || 'value' in head) return head;
  if (head.count < 0) return { value: array(null), end: head.end };
  if (depth >= MAX_DEPTH) throw new RespSyntaxError('RESP arrays nested too deep');
  const items: RespValue[] = [];
  let at = head.end;
  for (let i = 0; i < head.count; i++) {
    const item = parseValue(buf, at, depth + 1);
    if (!item) return undefined;
    items.push(item.value);
    at = item.end;
  }
  return { value: array(items), end: at };
}

function lengthOf(line: string): number {
  if (!/^(-1|\d{1,10})$/.test(line)) throw new RespSyntaxError(`bad RESP length ${JSON.stringify(line)}`);
  const n = Number(line);
  if (n > 512 * 1024 * 1024) throw new RespSyntaxError('RESP length over 512 MiB');
  return n;
}

/**
 * Reads replies from a byte stream (a Redis connection): feed chunks, take whole replies with their
 * bytes. Parsing resumes where it stopped, so a large reply arriving in many chunks is read once,
 * and bytes are appended to a buffer that grows by doubling. Values handed out keep pointing at the
 * bytes they were read from: those are never overwritten.
 */
export class RespReader {
  private buf: Buffer = Buffer.alloc(0);
  private len = 0;
  /** The first byte not parsed yet. */
  private pos = 0;
  /** The first byte of the reply being parsed. */
  private start = 0;
  /** Arrays being filled, innermost last. */
  private readonly stack: Array<{ items: RespValue[]; remaining: number }> = [];

  /** Adds received bytes. */
  feed(chunk: Buffer): void {
    if (this.start > 0) {
      // Drop what earlier replies used, into a fresh buffer (handed-out values still use the old one).
      const keep = this.len - this.start;
      const next = Buffer.allocUnsafe(Math.max(4096, keep + chunk.length));
      this.buf.copy(next, 0, this.start, this.len);
      this.buf = next;
      this.len = keep;
      this.pos -= this.start;
      this.start = 0;
    } else if (this.len + chunk.length > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(4096, this.buf.length * 2, this.len + chunk.length));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    chunk.copy(this.buf, this.len);
    this.len += chunk.length;
  }

  /** The next whole reply and its exact bytes, or undefined until more bytes arrive. */
  next(): { value: RespValue; raw: Buffer } | undefined {
    const view = this.buf.subarray(0, this.len);
    for (;;) {
      const head = parseHead(view, this.pos);
      if (!head) return undefined;
      this.pos = head.end;
      let value: RespValue;
      if ('value' in head) {
        value = head.value;
      } else if (head.count > 0) {
        if (this.stack.length >= MAX_DEPTH) throw new RespSyntaxError('RESP arrays nested too deep');
        this.stack.push({ items: [], remaining: head.count });
        continue;
      } else {
        value = array(head.count < 0 ? null : []);
      }
      for (;;) {
        const top = this.stack[this.stack.length - 1];
        if (!top) {
          const raw = view.subarray(this.start, this.pos);
          this.start = this.pos;
          return { value, raw };
        }
        top.items.push(value);
        if (--top.remaining > 0) break;
        this.stack.pop();
        value = array(top.items);
      }
    }
  }
}

/**
 * The commands in a `/.raw` WebSocket frame: one or more RESP arrays of bulk strings (integers are
 * taken as their decimal text, as Webdis does). Throws RespSyntaxError with a message for the client.
 */
export function parseCommands(frame: Buffer): Buffer[][] {
  const commands: Buffer[][] = [];
  let pos = 0;
  while (pos < frame.length) {
    const parsed = parseValue(frame, pos);
    if (!parsed) throw new RespSyntaxError('incomplete RESP command');
    const v = parsed.value;
    if (v.type !== 'array' || !v.items || v.items.length === 0) throw new RespSyntaxError('expected a RESP array of bulk strings');
    commands.push(
      v.items.map((item) => {
        if (item.type === 'bulk' && item.data) return Buffer.from(item.data);
        if (item.type === 'integer') return Buffer.from(item.text);
        throw new RespSyntaxError('command arguments must be bulk strings');
      }),
    );
    pos = parsed.end;
  }
  if (commands.length === 0) throw new RespSyntaxError('empty frame');
  return commands;
}
