// A connection's bounded outgoing buffer. Messages queued before the connection's turn to flush go
// out in one write: joined into one WebSocket frame where the dialect allows several messages per frame
// (the native protocol, by "\n"), or as consecutive frames in one syscall otherwise. Frames are built
// once and shared: a publication fanned out to many sockets is framed once, and a batch that many
// sockets receive identically (the common case in fan-out) is joined and framed once. A client
// whose unsent bytes pass the limit is cut off instead of growing memory.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/**
 * What an outbox writes to: a `ws` WebSocket, whose socket it writes whole frames to, or a
 * `MessageStream` (an HTTP response streaming messages), which frames and writes them itself.
 */
export interface OutboxSocket {
  /** 1 while open (WebSocket.OPEN). */
  readonly readyState: number;
  /** Bytes written but not yet sent. */
  readonly bufferedAmount: number;
}

/** A connection that is not a WebSocket: it frames the messages an outbox gathered, and writes them. */
export interface MessageStream extends OutboxSocket {
  /** Writes `first` and the first `n - 1` of `rest`, in order, in one write. */
  writeMessages(first: Buffer, rest: ReadonlyArray<Buffer | undefined> | undefined, n: number): void;
}

/** Limits and framing of an outbox. */
export interface OutboxLimits {
  /** Most bytes allowed queued here plus unsent in the socket. */
  readonly maxBytes: number;
  /** Joins several messages into one frame; null sends each as its own frame. */
  readonly separator: Buffer | null;
}

/** Options of an outbox that a session holds. */
export interface OutboxOptions extends OutboxLimits {
  /** Called once when the limit is passed; the outbox then drops everything. */
  readonly onOverflow: () => void;
}

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;

/** The length of the header of a frame of `len` payload bytes. */
const headerLength = (len: number): number => (len < 126 ? 2 : len < 65536 ? 4 : 10);

/**
 * Writes the header of an unmasked server frame (FIN set) of `len` payload bytes into `out` at `at`;
 * returns its length.
 */
function writeHeader(out: Buffer, at: number, len: number, opcode: number): number {
  out[at] = 0x80 | opcode;
  if (len < 126) {
    out[at + 1] = len;
    return 2;
  }
  if (len < 65536) {
    out[at + 1] = 126;
    out.writeUInt16BE(len, at + 2);
    return 4;
  }
  out[at + 1] = 127;
  out.writeUInt32BE(Math.floor(len / 2 ** 32), at + 2);
  out.writeUInt32BE(len >>> 0, at + 6);
  return 10;
}

/** The header alone of a frame of `len` payload bytes. */
function frameHeader(len: number, opcode: number): Buffer {
  const out = Buffer.allocUnsafe(10);
  return out.subarray(0, writeHeader(out, 0, len, opcode));
}

/** A whole unmasked server frame (FIN set) holding `payload`: one buffer, header then payload. */
export function frame(payload: Buffer, opcode = OPCODE_TEXT): Buffer {
  const len = payload.length;
  const out = Buffer.allocUnsafe(headerLength(len) + len);
  payload.copy(out, writeHeader(out, 0, len, opcode));
  return out;
}

// Text frames of shared message buffers (publications), built once per pass whoever sends them: a
// few recent ones, looked up by identity and forgotten when a pass ends. In a fan-out pass nearly
// every socket sends the same one or two publications. No Map or WeakMap: V8's scavenger keeps a
// WeakMap's values alive, and each Map.clear() leaves the old table linked to the new one; either
// kept every frame of the last second alive through each scavenge (over a megabyte at 5,000
// publications a second, and pauses several times longer).
const FRAME_CACHE = 8;
const frameKeys: Array<Buffer | undefined> = new Array<Buffer | undefined>(FRAME_CACHE).fill(undefined);
const frameValues: Array<Buffer | undefined> = new Array<Buffer | undefined>(FRAME_CACHE).fill(undefined);
let frameNext = 0;
let framesCached = 0;

function textFrame(bytes: Buffer): Buffer {
  for (let i = 0; i < framesCached; i++) if (frameKeys[i] === bytes) return frameValues[i]!;
  const f = frame(bytes);
  frameKeys[frameNext] = bytes;
  frameValues[frameNext] = f;
  frameNext = (frameNext + 1) % FRAME_CACHE;
  if (framesCached < FRAME_CACHE) framesCached++;
  return f;
}

/** The frame of one message: text (through the cache of shared frames) or binary. */
function frameOf(bytes: Buffer, binary: boolean | undefined): Buffer {
  return binary ? frame(bytes, OPCODE_BINARY) : textFrame(bytes);
}

function forgetFrames(): void {
  if (framesCached === 0) return;
  frameKeys.fill(undefined);
  frameValues.fill(undefined);
  frameNext = 0;
  framesCached = 0;
}

// The last batch written: sockets that flush the same messages in the same turn share its bytes. `sep`
// null: the messages' text frames one after another (a dialect whose messages are frames of their
// own), else one frame of the messages joined by `sep`.
let lastBatch: { items: Buffer[]; sep: Buffer | null; frame: Buffer } | undefined;

/** True when `items` are `first` followed by the first `n - 1` of `rest`. */
function sameItems(items: Buffer[], first: Buffer, rest: ReadonlyArray<Buffer | undefined>, n: number): boolean {
  if (items.length !== n || items[0] !== first) return false;
  for (let i = 1; i < n; i++) if (items[i] !== rest[i - 1]) return false;
  return true;
}

/**
 * A batch at least this large is not copied into one buffer (a 64 KB publication beside each socket's
 * own message would be copied once per socket): a joined one is written as its frame's header and its
 * items, gathered by the socket into one writev; messages that are frames of their own, a corked write
 * each.
 */
const GATHER_MIN_BYTES = 16 * 1024;

/** Writes `first` and the first `n - 1` of `rest`, joined by `sep`, as one frame gathered from its parts (`bytes`: the items' size). */
function writeGathered(socket: Socket, first: Buffer, rest: ReadonlyArray<Buffer | undefined>, n: number, sep: Buffer, bytes: number): void {
  socket.cork();
  socket.write(frameHeader(bytes + (n - 1) * sep.length, OPCODE_TEXT));
  socket.write(first);
  for (let i = 1; i < n; i++) {
    socket.write(sep);
    socket.write(rest[i - 1]!);
  }
  socket.uncork();
}

/**
 * The bytes of `first` and the first `n - 1` of `rest`, text messages, in one buffer for one write,
 * shared by the sockets that flush the same messages this pass: one frame of them joined by `sep`, or
 * (`sep` null, a dialect whose messages are frames of their own) their frames one after another, where
 * a socket write per frame, each through Node's stream layer, cost more than the frames' bytes.
 */
function batchBytes(first: Buffer, rest: ReadonlyArray<Buffer | undefined>, n: number, sep: Buffer | null): Buffer {
  const last = lastBatch;
  if (last && last.sep === sep && sameItems(last.items, first, rest, n)) return last.frame;
  const items = [first];
  for (let i = 1; i < n; i++) items.push(rest[i - 1]!);
  const bytes = sep ? joinedFrame(items, sep) : framesOneAfterAnother(items);
  lastBatch = { items, sep, frame: bytes };
  return bytes;
}

/** One text frame of `items` joined by `sep`. */
function joinedFrame(items: Buffer[], sep: Buffer): Buffer {
  const parts = [items[0]!];
  for (let i = 1; i < items.length; i++) parts.push(sep, items[i]!);
  return frame(Buffer.concat(parts));
}

/** A text frame of each of `items`, one after another in one buffer. */
function framesOneAfterAnother(items: Buffer[]): Buffer {
  let total = 0;
  for (const item of items) total += headerLength(item.length) + item.length;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const item of items) {
    at += writeHeader(out, at, item.length, OPCODE_TEXT);
    at += item.copy(out, at);
  }
  return out;
}

// Dirty outboxes are flushed in FIFO order by one setImmediate for all of them, in slices: after
// FLUSH_SLICE sockets the loop turns, so publications that arrive meanwhile (read from Redis, the API
// or clients) join the queues of sockets this pass has not reached yet and go out in the same pass.
// Under sustained fan-out a message then waits at most about one pass over the sockets, not the rest
// of the current pass plus a whole next one; and other I/O is not held up by a long pass.
const FLUSH_SLICE = 256;
// The two lists keep their storage from pass to pass: each holds `*Count` outboxes, and a slot is
// emptied (not the array shortened) once used. Setting an array's length to 0 gives V8 its storage
// back, so every pass would grow it again from nothing, and the per-connection queues below alike.
let draining: Array<OutboxBase<OutboxSocket> | undefined> = [];
let drainCount = 0;
let drainPos = 0;
let dirty: Array<OutboxBase<OutboxSocket> | undefined> = [];
let dirtyCount = 0;
let scheduled = false;

// A message to a connection with nothing queued and nothing unsent, while no pass is under way, is
// written at once, in the callback that brought it, rather than at the turn's end: a burst of
// messages read from Redis (or the API calls of one read) to sockets of their own then goes out one
// by one as each is handled, the k-th after k messages' work, instead of all after the whole burst's.
// The connection then counts as flushed this turn: its next messages of the turn wait for the flush
// and go out together, as before. At most WRITE_THROUGH such writes a turn: the first publication of a
// quiet fan-out channel writes that many sockets at once and the rest in the flush's slices; while a
// pass is under way (sustained fan-out) nothing is written through, so publications still join.
const WRITE_THROUGH = 256;
let writeThrough = WRITE_THROUGH;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(flushSlice);
}

/**
 * Runs `fn` once the messages queued so far have been written (their flush is a setImmediate, and
 * setImmediate callbacks run in order; in a pass longer than one slice, after its first slice). For
 * a publisher's reply, so that subscribers get the publication first.
 */
export function afterFlush(fn: () => void): void {
  setImmediate(fn);
}

function flushSlice(): void {
  scheduled = false;
  writeThrough = WRITE_THROUGH;
  // A slice counts the outboxes that wrote: one written through this turn and given nothing since
  // (see WRITE_THROUGH) only has its turn ended.
  for (let n = 0; n < FLUSH_SLICE; ) {
    if (drainPos >= drainCount) {
      if (dirtyCount === 0) break;
      // A new pass: swap the lists (the drained one, all its slots emptied, takes the next pass's).
      const done = draining;
      draining = dirty;
      drainCount = dirtyCount;
      dirty = done;
      dirtyCount = 0;
      drainPos = 0;
      forgetFrames();
    }
    const outbox = draining[drainPos]!;
    draining[drainPos++] = undefined;
    if (outbox.flush()) n++;
  }
  if (drainPos < drainCount || dirtyCount > 0) return schedule();
  drainCount = 0;
  drainPos = 0;
  lastBatch = undefined;
  forgetFrames();
}

/**
 * How far past its limit one turn's messages may take a connection whose socket keeps up: a burst of
 * publications that came at once is written at the turn's end, when the reader can take it.
 */
const BURST_FACTOR = 8;

/** How long a socket over its limit may take nothing before its client is cut off as not reading. */
export const STALL_MS = 1_000;

/** Most messages whose slots an outbox keeps between flushes: a longer burst's are let go after it. */
const QUEUE_KEPT = 32;

/**
 * The per-connection outgoing queue. A dialect's session may extend it (the native one does), so that
 * a delivery touches one object per connection, not a session and then its outbox, and says itself
 * what passing the limit does; others hold an `Outbox`, which calls back.
 */
export abstract class OutboxBase<W extends OutboxSocket = WebSocket> {
  // The messages to write, `count` of them: the first in a field (a connection mostly has one at a
  // time, and an idle one then holds no array at all), the others in the first slots of `rest`, whose
  // storage a busy connection keeps from flush to flush with its used slots emptied. (An array
  // shortened to 0 gives its storage back, and the next message would allocate it again.)
  private first: Buffer | undefined;
  private rest: Array<Buffer | undefined> | undefined;
  private count = 0;
  /** Per queued message: binary (true) or text; only kept when a binary message was queued. */
  private binary: boolean[] | undefined;
  private queuedBytes = 0;
  /**
   * The socket's unsent bytes as last read (after the last flush, or when the limit looked passed).
   * Between flushes the socket only drains (ws's few-byte control frames aside), so this does not
   * understate them; the limit check reads the socket itself only when this value says the limit is
   * passed, which keeps that read off the fan-out path.
   */
  private unsent = 0;
  /** The socket's unsent bytes right after the last write: less now means the client is taking them. */
  private unsentAfterWrite = 0;
  /**
   * When the socket was first seen over the limit and taking nothing (0: it is not). Cleared when it
   * is seen taking what it was given or back within the limit: by the check (`behind`), and at each
   * write (`sawSocket`), so that a clock started just after a write (which the socket had no time to
   * take) does not outlive a client that then caught up.
   */
  private stalledSince = 0;
  private pending = false;
  private dead = false;

  // Read on every message: copied out of the options, whose shape differs from dialect to dialect.
  private readonly maxBytes: number;
  private readonly separator: Buffer | null;
  /** Set when the connection is a message stream rather than a WebSocket. */
  private readonly stream: MessageStream | undefined;

  // Calls nothing a subclass overrides: a subclass's own fields are not set yet.
  constructor(
    protected readonly ws: W,
    limits: OutboxLimits,
  ) {
    this.maxBytes = limits.maxBytes;
    this.separator = limits.separator;
    this.stream = 'writeMessages' in ws ? (ws as unknown as MessageStream) : undefined;
  }

  /** Called once when the limit is passed, everything queued dropped by then: the client is to go. */
  protected abstract onOverflow(): void;

  /**
   * Queues a message for the next flush; false when the connection is over its limit or closed. Past
   * `maxBytes` (what waits here plus what its socket has not sent), a client is cut off when it is
   * behind (see `behind`): a burst of publications that came at once (an API batch, a Redis pipeline
   * read in one go) may take a client that reads it past the limit, up to BURST_FACTOR times it,
   * which bounds what one connection holds; one that stops reading is cut off within STALL_MS. A
   * message is always taken when nothing waits and the socket has sent everything, so one larger
   * than the limit still goes out to a client that keeps up. `through` false keeps the message for
   * the flush even when it could be written at once (see WRITE_THROUGH): for one that is to share a
   * write with what follows it this turn.
   */
  push(bytes: Buffer, binary = false, through = true): boolean {
    if (this.dead) return false;
    const limit = this.maxBytes - this.queuedBytes - bytes.length;
    if (this.unsent > limit && (this.unsent = this.ws.bufferedAmount) > limit && (this.count > 0 || this.unsent > 0) && this.behind(bytes.length)) {
      this.kill();
      this.onOverflow();
      return false;
    }
    // Not pending: nothing is queued, nor was anything written at once this turn.
    if (through && !this.pending && drainCount === 0 && writeThrough > 0 && this.writeNow(bytes, binary)) return true;
    if (binary || this.binary) (this.binary ??= new Array<boolean>(this.count).fill(false)).push(binary);
    if (this.count === 0) this.first = bytes;
    else if (this.rest) this.rest[this.count - 1] = bytes;
    else this.rest = [bytes];
    this.count++;
    this.queuedBytes += bytes.length;
    if (!this.pending) this.due();
    return true;
  }

  /** Marks the connection due a flush at the turn's end. */
  private due(): void {
    this.pending = true;
    dirty[dirtyCount++] = this;
    schedule();
  }

  /**
   * Writes a message at once (see WRITE_THROUGH) when the connection is a WebSocket whose socket has
   * sent everything; false when it is not, and the message is to be queued. The connection is then
   * due a flush, so that what else this turn brings it is queued and goes out in one write.
   */
  private writeNow(bytes: Buffer, binary: boolean): boolean {
    const socket = this.openSocket();
    if (!socket || socket.writableLength !== 0) return false;
    writeThrough--;
    this.stalledSince = 0; // it has sent everything
    socket.write(frameOf(bytes, binary));
    this.unsent = this.unsentAfterWrite = socket.writableLength;
    this.due();
    return true;
  }

  /**
   * Whether a client past its limit (`unsent` just read) is behind: it would hold more than
   * BURST_FACTOR times the limit in all, or its socket has held more than the limit and taken
   * nothing for STALL_MS (a reader that stopped). A socket over the limit that is taking what it was
   * given (less unsent than right after the last write) is reading: a burst it is working through.
   */
  private behind(incoming: number): boolean {
    if (this.unsent + this.queuedBytes + incoming > BURST_FACTOR * this.maxBytes) return true;
    if (this.unsent <= this.maxBytes - (this.count === 0 ? incoming : 0) || this.unsent < this.unsentAfterWrite) {
      this.stalledSince = 0;
      return false;
    }
    const now = Date.now();
    if (this.stalledSince === 0) this.stalledSince = now;
    return now - this.stalledSince >= STALL_MS;
  }

  /**
   * The socket under `ws`, when the connection is an open WebSocket whose socket can be written to;
   * whole frames are written to it directly (see `flush`). `writable` reads the socket's write state
   * only (which the write reads anyway); `destroyed` would read its read state too, one more object
   * per socket per flush.
   */
  private openSocket(): Socket | undefined {
    if (this.stream || this.ws.readyState !== 1) return undefined;
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    return socket && socket.writable ? socket : undefined;
  }

  /**
   * Before a write while the stall clock runs: the socket's unsent bytes now. Less than right after
   * the last write (the client took some), or within the limit, and the client is not stalled.
   */
  private sawSocket(unsentNow: number): void {
    if (unsentNow < this.unsentAfterWrite || unsentNow <= this.maxBytes) this.stalledSince = 0;
  }

  /** Writes everything queued now; false when nothing was. */
  flush(): boolean {
    this.pending = false;
    const n = this.count;
    if (this.dead || n === 0) return false;
    const first = this.first!;
    const rest = this.rest;
    const binary = this.binary;
    const queued = this.queuedBytes;
    this.binary = undefined;
    this.queuedBytes = 0;
    const stream = this.stream;
    if (stream) {
      // HTTP streaming or SSE: the stream frames the messages itself.
      if (stream.readyState === 1) {
        if (this.stalledSince !== 0) this.sawSocket(stream.bufferedAmount);
        stream.writeMessages(first, rest, n);
        this.unsent = this.unsentAfterWrite = stream.bufferedAmount;
      }
    } else {
      // The socket under `ws`: whole frames are written to it directly, so one frame built for many
      // sockets costs one write each (ws itself would build a header and write twice per message).
      const socket = this.openSocket();
      if (socket) {
        if (this.stalledSince !== 0) this.sawSocket(socket.writableLength);
        const sep = this.separator;
        if (n === 1) {
          socket.write(frameOf(first, binary?.[0]));
        } else if (!binary && queued < GATHER_MIN_BYTES) {
          socket.write(batchBytes(first, rest!, n, sep));
        } else if (sep && !binary) {
          writeGathered(socket, first, rest!, n, sep, queued);
        } else {
          socket.cork();
          for (let i = 0; i < n; i++) {
            const item = i === 0 ? first : rest![i - 1]!;
            socket.write(frameOf(item, binary?.[i]));
          }
          socket.uncork();
        }
        this.unsent = this.unsentAfterWrite = socket.writableLength;
      }
    }
    this.count = 0;
    this.first = undefined;
    // Slots are kept for a connection that gets several messages a turn (under fan-out at high rates),
    // not for a burst, nor for one that got two (the connect and subscribe replies of a connection
    // that then stays idle: it would hold them for good).
    if (n > QUEUE_KEPT || n < 3) this.rest = undefined;
    else for (let i = 0; i < n - 1; i++) rest![i] = undefined;
    return true;
  }

  /** Drops what is queued and refuses further writes. */
  kill(): void {
    this.dead = true;
    this.first = undefined;
    this.rest = undefined;
    this.count = 0;
    this.binary = undefined;
    this.queuedBytes = 0;
  }
}

/** An outbox that a session holds: passing the limit calls the options' `onOverflow`. */
export class Outbox<W extends OutboxSocket = WebSocket> extends OutboxBase<W> {
  private readonly overflowed: () => void;

  constructor(ws: W, options: OutboxOptions) {
    super(ws, options);
    this.overflowed = options.onOverflow;
  }

  protected onOverflow(): void {
    this.overflowed();
  }
}
