// A connection's bounded outgoing buffer. Writes queued in one turn of the event loop go out as one
// WebSocket frame (joined by the dialect's separator), so a burst costs one syscall, not many; a
// client whose unsent bytes pass the limit is cut off instead of growing memory.
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

/** The per-connection outgoing queue. */
export class Outbox {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private dead = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly options: OutboxOptions,
  ) {}

  /** Queues bytes for the next flush; false when the connection is over its limit or closed. */
  push(bytes: Buffer): boolean {
    if (this.dead) return false;
    if (this.queuedBytes + bytes.length + this.ws.bufferedAmount > this.options.maxBytes) {
      this.kill();
      this.options.onOverflow();
      return false;
    }
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return true;
  }

  /** Writes everything queued now. */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.dead || this.queue.length === 0) return;
    const queue = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.ws.readyState !== 1) return;
    const sep = this.options.separator;
    if (queue.length === 1 || !sep) {
      for (const bytes of queue) this.ws.send(bytes, { binary: false });
      return;
    }
    const parts: Buffer[] = [];
    for (let i = 0; i < queue.length; i++) {
      if (i > 0) parts.push(sep);
      parts.push(queue[i]!);
    }
    this.ws.send(Buffer.concat(parts), { binary: false });
  };

  /** Drops what is queued and refuses further writes. */
  kill(): void {
    this.dead = true;
    this.queue = [];
    this.queuedBytes = 0;
  }
}
