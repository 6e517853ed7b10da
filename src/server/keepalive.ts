// WebSocket pings for the dialects whose protocols have none of their own (Webdis, ws4redis): a ping
// frame every interval keeps a quiet socket alive through proxies that cut idle connections (nginx's
// 60 s read timeout), and a socket that has not answered the previous ping by the next is ended, so a
// peer that vanished (a network gone without a FIN) does not hold its descriptor, its place under the
// connection limit and its subscriptions for ever. Browsers and WebSocket libraries answer pings by
// themselves. The sockets are pinged in SLICES groups, one group per tick, so that 10,000 sockets
// make 500 pings a tick rather than 10,000 writes at once holding up the event loop.
import { WebSocket } from 'ws';

/** Groups the sockets are spread over; each is visited once per interval. */
const SLICES = 20;

/** Pings the sockets it watches every `intervalMs` (0: never). */
export class KeepAlive {
  private readonly slices: Array<Set<WebSocket>> = Array.from({ length: SLICES }, () => new Set());
  /** Sockets pinged and not answered yet. */
  private readonly waiting = new Set<WebSocket>();
  private readonly timer: NodeJS.Timeout | undefined;
  private tick = 0;
  private added = 0;

  constructor(intervalMs: number) {
    if (intervalMs > 0) {
      this.timer = setInterval(() => this.visit(this.slices[this.tick++ % SLICES]!), Math.max(1, Math.round(intervalMs / SLICES)));
      this.timer.unref();
    }
  }

  /** Watches a socket until it closes. */
  watch(ws: WebSocket): void {
    if (!this.timer) return;
    const slice = this.slices[this.added++ % SLICES]!;
    slice.add(ws);
    ws.on('pong', () => this.waiting.delete(ws));
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
      if (this.waiting.has(ws)) {
        ws.terminate(); // its 'close' forgets it
        continue;
      }
      this.waiting.add(ws);
      ws.ping();
    }
  }
}
