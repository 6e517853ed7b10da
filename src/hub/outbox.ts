// A connection's bounded outgoing buffer. Messages queued during one turn of the event loop go out
// in one write: joined into one WebSocket frame where the dialect allows several messages per frame
// (the native protocol, by "\n"), or as consecutive frames in one syscall otherwise. Frames are built
// once and shared: a publication fanned out to many sockets is framed once, and a batch that many
// sockets receive identically (the common case in fan-out) is joined and framed once. A client
// whose unsent bytes pass the limit is cut off instead of growing memory.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** Options of an outbox. */
export interface OutboxOptions {
  /** Most bytes allowed queued here plus unsent in the socket. */
  readonly maxBytes: number;
  /** Joins several messages into one frame; null sends each as its own frame. */
  readonly separator: Buffer | null;
  /** Called once when the limit is passed; the outbox then drops everything. */
  readonly onOverflow: () => void;
}

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;

/** A whole unmasked server frame (FIN set) holding `payload`. */
export function frame(payload: Buffer, opcode = OPCODE_TEXT): Buffer {
  const len = payload.length;
  let header: Buffer;
  if (len < 126) {
    header = Buffer.allocUnsafe(2);
    header[1] = len;
  } else if (len < 65536) {
    header = Buffer.allocUnsafe(4);
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.allocUnsafe(10);
    header[1] = 127;
    header.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    header.writeUInt32BE(len >>> 0, 6);
  }
  header[0] = 0x80 | opcode;
  return Buffer.concat([header, payload], header.length + len);
}

// Text frames of shared message buffers (publications), built once whoever sends them.
const textFrames = new WeakMap<Buffer, Buffer>();
function textFrame(bytes: Buffer): Buffer {
  let f = textFrames.get(bytes);
  if (!f) textFrames.set(bytes, (f = frame(bytes)));
  return f;
}

// The last joined batch: sockets that flush the same messages in the same turn share its frame.
let lastBatch: { items: Buffer[]; sep: Buffer; frame: Buffer } | undefined;

function batchFrame(items: Buffer[], sep: Buffer): Buffer {
  const last = lastBatch;
  if (last && last.sep === sep && last.items.length === items.length && last.items.every((b, i) => b === items[i])) return last.frame;
  const parts: Buffer[] = [];
  for (let i = 0; i < items.length; i++) {
    if (i > 0) parts.push(sep);
    parts.push(items[i]!);
  }
  const f = frame(Buffer.concat(parts));
  lastBatch = { items, sep, frame: f };
  return f;
}

// One setImmediate flushes every outbox written to in this turn, instead of one callback each.
let dirty: Outbox[] = [];
let scheduled = false;
function flushAll(): void {
  scheduled = false;
  const list = dirty;
  dirty = [];
  for (const o of list) o.flush();
  lastBatch = undefined;
}

/** The per-connection outgoing queue. */
export class Outbox {
  private queue: Buffer[] = [];
  /** Per queued message: binary (true) or text; only kept when a binary message was queued. */
  private binary: boolean[] | undefined;
  private queuedBytes = 0;
  private pending = false;
  private dead = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly options: OutboxOptions,
  ) {}

  /** Queues a message for the next flush; false when the connection is over its limit or closed. */
  push(bytes: Buffer, binary = false): boolean {
    if (this.dead) return false;
    if (this.queuedBytes + bytes.length + this.ws.bufferedAmount > this.options.maxBytes) {
      this.kill();
      this.options.onOverflow();
      return false;
    }
    if (binary || this.binary) (this.binary ??= this.queue.map(() => false)).push(binary);
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    if (!this.pending) {
      this.pending = true;
      dirty.push(this);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flushAll);
      }
    }
    return true;
  }

  /** Writes everything queued now. */
  flush(): void {
    this.pending = false;
    if (this.dead || this.queue.length === 0) return;
    const queue = this.queue;
    const binary = this.binary;
    this.queue = [];
    this.binary = undefined;
    this.queuedBytes = 0;
    // The socket under `ws`: whole frames are written to it directly, so one frame built for many
    // sockets costs one write each (ws itself would build a header and write twice per message).
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    if (this.ws.readyState !== 1 || !socket || socket.destroyed) return;
    const sep = this.options.separator;
    if (queue.length === 1) {
      socket.write(binary?.[0] ? frame(queue[0]!, OPCODE_BINARY) : textFrame(queue[0]!));
    } else if (sep && !binary) {
      socket.write(batchFrame(queue, sep));
    } else {
      socket.cork();
      for (let i = 0; i < queue.length; i++) socket.write(binary?.[i] ? frame(queue[i]!, OPCODE_BINARY) : textFrame(queue[i]!));
      socket.uncork();
    }
  }

  /** Drops what is queued and refuses further writes. */
  kill(): void {
    this.dead = true;
    this.queue = [];
    this.binary = undefined;
    this.queuedBytes = 0;
  }
}
