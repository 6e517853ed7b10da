// WebSocket pings for the dialects whose protocols have none of their own (Webdis, ws4redis): a ping
// frame every interval keeps a quiet socket alive through proxies that cut idle connections (nginx's
// 60 s read timeout), and a socket that has not answered the previous ping by the next is ended, so a
// peer that vanished (a network gone without a FIN) does not hold its descriptor, its place under the
// connection limit and its subscriptions for ever. Browsers and WebSocket libraries answer pings by
// themselves.
import { WebSocket } from 'ws';

/** Pings the sockets it watches every `intervalMs` (0: never). */
export class KeepAlive {
  private readonly sockets = new Set<WebSocket>();
  /** Sockets pinged and not answered yet. */
  private readonly waiting = new Set<WebSocket>();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(intervalMs: number) {
    if (intervalMs > 0) {
      this.timer = setInterval(() => this.tick(), intervalMs);
      this.timer.unref();
    }
  }

  /** Watches a socket until it closes. */
  watch(ws: WebSocket): void {
    if (!this.timer) return;
    this.sockets.add(ws);
    ws.on('pong', () => this.waiting.delete(ws));
    ws.once('close', () => {
      this.sockets.delete(ws);
      this.waiting.delete(ws);
    });
  }

  /** Stops pinging (shutdown). */
  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    for (const ws of this.sockets) {
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
