// WebSocket pings for the dialects whose protocols have none of their own (Webdis, ws4redis): a ping
// frame every interval keeps a quiet socket alive through proxies that cut idle connections (nginx's
// 60 s read timeout), and a socket that gives no sign of life between two visits is ended, so a peer
// that vanished (a network gone without a FIN) does not hold its descriptor, its place under the
// connection limit and its subscriptions for ever. Browsers and WebSocket libraries answer pings by
// themselves. A pong or any message is a sign of life; so is a send queue that went down since the
// last visit (the ping waits behind it: a slow reader is not a vanished one, and the dialects' queue
// limits deal with readers too slow to keep up); a socket the dialect stopped reading is left alone
// until it reads again. The sockets are pinged in SLICES groups, one group per tick, so that 10,000
// sockets make 500 pings a tick rather than 10,000 writes at once holding up the event loop.
import { WebSocket } from 'ws';

/** Groups the sockets are spread over; each is visited once per interval. */
const SLICES = 20;

/** A socket pinged and not heard from since, with what was queued for it then. */
interface Waiting {
  queued: number;
}

/** Pings the sockets it watches every `intervalMs` (0: never). */
export class KeepAlive {
  private readonly slices: Array<Set<WebSocket>> = Array.from({ length: SLICES }, () => new Set());
  private readonly waiting = new Map<WebSocket, Waiting>();
  private readonly timer: NodeJS.Timeout | undefined;
  private tick = 0;

  constructor(intervalMs: number) {
    if (intervalMs > 0) {
      this.timer = setInterval(() => this.visit(this.slices[this.tick++ % SLICES]!), Math.max(1, Math.round(intervalMs / SLICES)));
      this.timer.unref();
    }
  }

  /** Watches a socket until it closes. */
  watch(ws: WebSocket): void {
    if (!this.timer) return;
    // The smallest group, so that sockets that come and go do not leave the others bunched together.
    let slice = this.slices[0]!;
    for (const s of this.slices) if (s.size < slice.size) slice = s;
    slice.add(ws);
    const alive = () => this.waiting.delete(ws);
    ws.on('pong', alive);
    ws.on('message', alive);
    ws.once('close', () => {
      slice.delete(ws);
      this.waiting.delete(ws);
    });
  }

  /** Stops pinging (shutdown). */
  stop(): void {
    clearInterval(this.timer);
  }

  private visit(slice: Set<WebSocket>): void {
    for (const ws of slice) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      const queued = ws.bufferedAmount;
      const waiting = this.waiting.get(ws);
      if (waiting) {
        // Not read while its commands wait (the dialect paused it): its pong may be unread, not unsent.
        if (ws.isPaused) continue;
        if (queued === 0 || queued >= waiting.queued) {
          ws.terminate(); // its 'close' forgets it
          continue;
        }
        waiting.queued = queued; // still draining: its ping has not gone out yet
        continue;
      }
      this.waiting.set(ws, { queued });
      ws.ping();
    }
  }
}
