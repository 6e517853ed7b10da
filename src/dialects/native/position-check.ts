// The periodic position check (Centrifugo's client.channel_position_check_delay). A positioned
// subscription learns of a lost publication when the next one arrives with a gap; when the lost one
// was the last, nothing would tell it. So, with an engine whose delivery can lose publications
// (Redis: pub/sub is at most once), every channel_position_check_delay this node reads the stream
// top of each channel it holds positioned subscriptions of (one engine read per channel, however
// many subscribers), and a subscription still behind that top a grace period later (the
// publication was not merely in flight), or in another epoch, is told it has insufficient state:
// the client subscribes again and recovers from history (a server-side one reconnects).
import { throttledWarn } from '../../engine/log-throttle.js';
import type { StreamPosition } from '../../engine/engine.js';
import { isEngineUnavailable, logFailure } from '../../errors.js';
import { metaTtlOf, type ChannelSub } from './channel-ops.js';
import type { NativeContext } from './context.js';

/** Most engine reads one check has in flight at once. */
const CONCURRENCY = 32;
/** Longest wait for a publication that may be in flight before a subscription behind the top fails the check. */
const MAX_GRACE_MS = 5_000;

/** A subscription found behind its stream's top, and that top. */
interface Behind {
  readonly sub: ChannelSub;
  readonly top: StreamPosition;
}

/** Checks this node's positioned subscriptions against their streams' tops, every `delayMs`. */
export class PositionChecker {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly graceMs: number;
  /** While the engine is unavailable every read fails: one warning every 5 s. */
  private readonly warn: ReturnType<typeof throttledWarn>;

  constructor(
    private readonly ctx: NativeContext,
    private readonly delayMs: number,
  ) {
    this.graceMs = Math.min(delayMs, MAX_GRACE_MS);
    this.warn = throttledWarn(ctx.log, 5_000);
  }

  /** Starts checking (nothing to do with an engine that delivers every publication it stores). */
  start(): void {
    if (this.ctx.engine.reliableDelivery || this.timer) return;
    this.timer = setInterval(() => void this.check(), this.delayMs);
    this.timer.unref();
  }

  /** Stops checking (the node is closing). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check of every positioned subscription this node holds; resolves once the reads are done. */
  async check(): Promise<void> {
    if (this.running) return; // the last one is still reading (a slow engine): this one is skipped
    this.running = true;
    try {
      const byChannel = new Map<string, ChannelSub[]>();
      for (const session of this.ctx.registry.everySession()) {
        for (const sub of session.subs.list()) {
          if (!sub.positioned || sub.buffer !== null) continue; // one still being set up reads its own position
          const list = byChannel.get(sub.channel);
          if (list) list.push(sub);
          else byChannel.set(sub.channel, [sub]);
        }
      }
      const behind: Behind[] = [];
      const channels = [...byChannel.keys()];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < channels.length) {
          const channel = channels[next++]!;
          await this.checkChannel(channel, byChannel.get(channel)!, behind);
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, channels.length) }, worker));
      if (behind.length > 0) setTimeout(() => this.failBehind(behind), this.graceMs).unref();
    } finally {
      this.running = false;
    }
  }

  private async checkChannel(channel: string, subs: readonly ChannelSub[], behind: Behind[]): Promise<void> {
    let top: StreamPosition;
    try {
      const opts = this.ctx.rules.options(channel);
      top = (await this.ctx.engine.history(channel, { limit: 0, metaTtlMs: opts ? metaTtlOf(opts) : undefined })).position;
    } catch (err) {
      // Checked again next time; a subscription that lost a publication meanwhile is still behind then.
      if (isEngineUnavailable(err)) this.warn('position check failed', { channel, err: err.message }, 'position check failed');
      else logFailure(this.ctx.log, err, { channel }, 'position check failed');
      return;
    }
    for (const sub of subs) {
      if (current(sub) && (sub.epoch !== top.epoch || sub.offset < top.offset)) behind.push({ sub, top });
    }
  }

  /** The subscriptions still behind the top read a grace period ago resubscribe (and recover). */
  private failBehind(behind: readonly Behind[]): void {
    let failed = 0;
    const channels = new Set<string>();
    for (const { sub, top } of behind) {
      if (!current(sub) || (sub.epoch === top.epoch && sub.offset >= top.offset)) continue;
      failed++;
      channels.add(sub.channel);
      sub.session.insufficientState(sub);
    }
    if (failed === 0) return;
    this.ctx.log.warn(
      { subscriptions: failed, channels: [...channels].slice(0, 10), numChannels: channels.size },
      'positioned subscriptions were behind their stream (a publication was lost on its way to this node): they resubscribe and recover',
    );
  }
}

/** The subscription is still its session's, on a session still open. */
function current(sub: ChannelSub): boolean {
  return !sub.session.closed && sub.session.subs.get(sub.channel) === sub;
}
