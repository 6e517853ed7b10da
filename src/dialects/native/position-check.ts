// The periodic position check (Centrifugo's client.channel_position_check_delay). A positioned
// subscription learns of a lost publication when the next one arrives with a gap; when the lost one
// was the last, nothing would tell it. So, with an engine whose delivery can lose publications
// (Redis: pub/sub is at most once), every channel_position_check_delay this node reads the stream
// top of each channel it holds positioned subscriptions of (one engine read per channel, however
// many subscribers). A subscription fails the check when, a grace period later, it is still behind
// that top and got nothing meanwhile (a publication merely in flight, or a node lagging behind a
// busy stream, moves it on), when it holds another epoch, or when it is ahead of the top (the
// stream went back: Redis restored older data). It is then told it has insufficient state: the
// client subscribes again and recovers from history (a server-side one reconnects).
import type { StreamPosition } from '../../engine/engine.js';
import { logFailure } from '../../errors.js';
import type { ChannelSub } from './channel-ops.js';
import { metaTtlOf } from './publish-history.js';
import type { NativeContext } from './context.js';

/** Most engine reads one check has in flight at once. */
const CONCURRENCY = 32;
/** Longest wait for a publication that may be in flight before a subscription behind the top fails the check. */
const MAX_GRACE_MS = 5_000;

/** A subscription whose position did not match its stream's top, that top, and its offset when the top was asked for. */
interface Suspect {
  readonly sub: ChannelSub;
  readonly top: StreamPosition;
  readonly offset: number;
}

/** Checks this node's positioned subscriptions against their streams' tops, every `delayMs`. */
export class PositionChecker {
  private timer: NodeJS.Timeout | undefined;
  /** The grace periods under way (cleared at close). */
  private readonly graces = new Set<NodeJS.Timeout>();
  private running = false;
  private closed = false;
  private readonly graceMs: number;

  constructor(
    private readonly ctx: NativeContext,
    private readonly delayMs: number,
  ) {
    // Over before the next check starts.
    this.graceMs = Math.min(delayMs / 2, MAX_GRACE_MS);
  }

  /** Starts checking (nothing to do with an engine that delivers every publication it stores). */
  start(): void {
    if (this.ctx.engine.reliableDelivery || this.timer || this.closed) return;
    this.timer = setInterval(() => void this.check(), this.delayMs);
    this.timer.unref();
  }

  /** Stops checking (the node is closing). */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const grace of this.graces) clearTimeout(grace);
    this.graces.clear();
  }

  /** One check of every positioned subscription this node holds; resolves once the reads are done. */
  async check(): Promise<void> {
    if (this.running) return; // the last one is still reading (a slow engine): this one is skipped
    this.running = true;
    try {
      // Each subscription with its offset now, before its channel's top is asked for: a top read
      // later can be above it (publications in flight) but never, rightly, below it.
      const byChannel = new Map<string, ChannelSub[]>();
      for (const session of this.ctx.registry.everySession()) {
        for (const sub of session.subs.list()) {
          if (!sub.positioned || sub.buffer !== null) continue; // one still being set up reads its own position
          const list = byChannel.get(sub.channel);
          if (list) list.push(sub);
          else byChannel.set(sub.channel, [sub]);
        }
      }
      const offsets = new Map<ChannelSub, number>();
      for (const subs of byChannel.values()) for (const sub of subs) offsets.set(sub, sub.offset);
      const suspects: Suspect[] = [];
      const channels = [...byChannel.keys()];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < channels.length && !this.closed) {
          const channel = channels[next++]!;
          await this.checkChannel(channel, byChannel.get(channel)!, offsets, suspects);
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, channels.length) }, worker));
      if (suspects.length === 0 || this.closed) return;
      const grace = setTimeout(() => {
        this.graces.delete(grace);
        this.failSuspects(suspects);
      }, this.graceMs);
      grace.unref();
      this.graces.add(grace);
    } finally {
      this.running = false;
    }
  }

  private async checkChannel(channel: string, subs: readonly ChannelSub[], offsets: ReadonlyMap<ChannelSub, number>, suspects: Suspect[]): Promise<void> {
    let top: StreamPosition;
    try {
      const opts = this.ctx.rules.options(channel);
      top = (await this.ctx.engine.history(channel, { limit: 0, metaTtlMs: opts ? metaTtlOf(opts) : undefined })).position;
    } catch (err) {
      // Checked again next time; a subscription that lost a publication meanwhile is still behind then.
      // While the engine is unavailable every read fails: logFailure warns once every 5 s.
      logFailure(this.ctx.log, err, { channel }, 'position check failed');
      return;
    }
    for (const sub of subs) {
      if (!current(sub)) continue;
      const offset = offsets.get(sub)!;
      if (sub.epoch !== top.epoch || offset !== top.offset) suspects.push({ sub, top, offset });
    }
  }

  /** The suspects that still fail the check a grace period after their top was read resubscribe (and recover). */
  private failSuspects(suspects: readonly Suspect[]): void {
    let failed = 0;
    const channels = new Set<string>();
    for (const suspect of suspects) {
      if (!current(suspect.sub) || !fails(suspect)) continue;
      failed++;
      channels.add(suspect.sub.channel);
      suspect.sub.session.insufficientState(suspect.sub, 'position_check');
    }
    if (failed === 0) return;
    this.ctx.log.warn(
      { subscriptions: failed, channels: [...channels].slice(0, 10), numChannels: channels.size },
      'positioned subscriptions did not match their stream (a publication lost on its way to this node, or a stream that went back): they resubscribe and recover',
    );
  }
}

/**
 * Whether a subscription fails the check a grace period after its stream's top was read: in another
 * epoch; ahead of the top (the stream went back); or behind it and sent nothing since (a publication
 * on its way, or a node lagging behind a busy stream, moves it on; a lost last one does not).
 */
function fails({ sub, top, offset }: Suspect): boolean {
  if (sub.epoch !== top.epoch) return true;
  if (offset > top.offset) return true;
  return sub.offset === offset && sub.offset < top.offset;
}

/** The subscription is still its session's, on a session still open. */
function current(sub: ChannelSub): boolean {
  return !sub.session.closed && sub.session.subs.get(sub.channel) === sub;
}
