// A native session's subscriptions by channel. Most connections hold one, so the first is kept in a
// field and a Map is made only from the second on (see FirstInline); the hub's delivery to such a
// session then needs no hash lookup at all.
import { FirstInline } from '../../hub/first-inline.js';
import type { ChannelSub } from './channel-ops.js';

/** Channel -> subscription, in the order they were added. */
export class Subscriptions extends FirstInline<string, ChannelSub> {
  protected keyOf(sub: ChannelSub): string {
    return sub.channel;
  }
}
