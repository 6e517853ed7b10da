// Fossil delta compression for subscriptions that negotiated it (`delta: "fossil"` in a subscribe,
// in a namespace whose `allowed_delta_types` lists it). Such a subscription is sent every
// publication with `data` as a string: in full (the payload's text), or, for a publication marked
// for delta (the namespace's `delta_publish`, or `delta` in the publish call), as a fossil delta
// against the payload this subscription was sent last: the base its client holds. The base is the
// subscription's own, so a delta never relies on a publication the client did not get; a delta is
// sent only when it is shorter than the payload and valid UTF-8 (it travels as a JSON string).
import { isUtf8 } from 'node:buffer';
import { createDelta } from 'fossil-delta';
import type { Publication } from '../../engine/engine.js';
import { encodeStringPublicationPush, NON_JSON_PUSH, type RawJson, stringPublicationJson } from './codec.js';

/** The only delta type (Centrifugo's). */
export const FOSSIL = 'fossil';

/** The payload as the client holds it: the UTF-8 bytes of its text. */
function textBytes(data: Buffer): Buffer {
  return isUtf8(data) ? data : Buffer.from(data.toString('utf8'));
}

/** A fossil delta turning `base`'s payload into `pub`'s, as text; undefined when it would not help. */
function deltaText(base: Publication, pub: Publication): string | undefined {
  const target = textBytes(pub.data);
  const patch = createDelta(textBytes(base.data), target);
  // A delta may split a multi-byte character between a copy and an insert: not text, so not sent.
  if (patch.length >= target.length || !isUtf8(patch)) return undefined;
  return Buffer.from(patch.buffer, patch.byteOffset, patch.length).toString('utf8');
}

// The delta pushes of recent (base, publication) pairs, looked up by identity: under fan-out every
// subscriber of a channel holds the same base, so a publication's delta is made once per node.
const CACHE = 8;
const cacheBase: Array<Publication | undefined> = new Array<Publication | undefined>(CACHE).fill(undefined);
const cachePub: Array<Publication | undefined> = new Array<Publication | undefined>(CACHE).fill(undefined);
const cachePush: Array<Buffer | null> = new Array<Buffer | null>(CACHE).fill(null);
let cacheNext = 0;

/** The delta push of `pub` against `base` on `channel`; null when the full payload is to be sent. */
function deltaPush(channel: string, base: Publication, pub: Publication): Buffer | null {
  for (let i = 0; i < CACHE; i++) if (cachePub[i] === pub && cacheBase[i] === base) return cachePush[i]!;
  const text = deltaText(base, pub);
  const push = text === undefined ? null : encodeStringPublicationPush(channel, pub, text, true);
  cacheBase[cacheNext] = base;
  cachePub[cacheNext] = pub;
  cachePush[cacheNext] = push;
  cacheNext = (cacheNext + 1) % CACHE;
  return push;
}

/** One subscription's delta state: the publication whose payload its client holds. */
export class DeltaChain {
  private base: Publication | undefined;

  /** `always`: the namespace's `delta_publish` (every publication is marked for delta). */
  constructor(private readonly always: boolean) {}

  /** The push to send for `pub`: `full` (its payload as a string, shared by every such subscriber) or a delta. */
  push(channel: string, pub: Publication, full: Buffer): Buffer {
    if (full === NON_JSON_PUSH) return full;
    const base = this.base;
    this.base = pub;
    if (base === undefined || !(this.always || pub.delta)) return full;
    return deltaPush(channel, base, pub) ?? full;
  }

  /** The wire form of a publication in a reply (recovery), continuing the chain. */
  json(pub: Publication): RawJson {
    const base = this.base;
    this.base = pub;
    const text = base !== undefined && (this.always || pub.delta) ? deltaText(base, pub) : undefined;
    return text === undefined ? stringPublicationJson(pub, pub.data.toString('utf8'), false) : stringPublicationJson(pub, text, true);
  }
}
