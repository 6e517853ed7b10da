// A native session's subscriptions by channel, for its commands (the hub holds each subscription
// itself, so delivery does not look here). Most connections hold one, so the first is kept in a
// field and a Map is made only from the second on (see FirstInline).
import { FirstInline } from '../../hub/first-inline.js';
import type { ChannelSub } from './channel-ops.js';

/** Channel -> subscription, in the order they were added. */
export class Subscriptions extends FirstInline<string, ChannelSub> {
  protected keyOf(sub: ChannelSub): string {
    return sub.channel;
  }
}
