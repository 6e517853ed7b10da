// A native session's subscriptions by channel. Most connections hold one, so the first is kept in a
// field and a Map is made only from the second on: an empty Map with its table costs about 200 bytes
// per connection, and the hub's delivery to a session then needs no hash lookup at all.
import type { ChannelSub } from './channel-ops.js';

/** Channel -> subscription, in the order they were added (the Map subset sessions use). */
export class Subscriptions {
  /** The only subscription, while there is at most one and no Map. */
  private one: ChannelSub | undefined;
  private many: Map<string, ChannelSub> | undefined;

  get size(): number {
    return this.many ? this.many.size : this.one ? 1 : 0;
  }

  get(channel: string): ChannelSub | undefined {
    if (this.many) return this.many.get(channel);
    const one = this.one;
    return one !== undefined && one.channel === channel ? one : undefined;
  }

  has(channel: string): boolean {
    return this.get(channel) !== undefined;
  }

  /** Adds or replaces the subscription of `sub.channel`. */
  set(sub: ChannelSub): void {
    if (this.many) {
      this.many.set(sub.channel, sub);
    } else if (this.one === undefined || this.one.channel === sub.channel) {
      this.one = sub;
    } else {
      this.many = new Map([
        [this.one.channel, this.one],
        [sub.channel, sub],
      ]);
      this.one = undefined;
    }
  }

  delete(channel: string): boolean {
    if (this.many) return this.many.delete(channel);
    if (this.one === undefined || this.one.channel !== channel) return false;
    this.one = undefined;
    return true;
  }

  /** A snapshot of the subscriptions, safe to iterate while they change. */
  list(): ChannelSub[] {
    if (this.many) return [...this.many.values()];
    return this.one ? [this.one] : [];
  }
}
