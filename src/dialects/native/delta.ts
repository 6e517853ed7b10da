// Fossil delta compression for subscriptions that negotiated it (`delta: "fossil"` in a subscribe,
// in a namespace whose `allowed_delta_types` lists it). Such a subscription is sent every
// publication with `data` as a string: in full (the payload's text), or, for a publication marked
// for delta (the namespace's `delta_publish`, or `delta` in the publish call), as a fossil delta
// against the payload this subscription was sent last: the base its client holds. The base is the
// subscription's own, so a delta never relies on a publication the client did not get; a delta is
// sent only when it is shorter than the payload and valid UTF-8 (it travels as a JSON string).
//
// What it costs is bounded: a delta is made once per node for every subscription holding the same
// base (bases and payloads are compared by content, so subscriptions that recovered their base from
// history share it too); payloads that sampling shows to have little in common (under a quarter
// of 16 sampled 16-byte blocks found in the base) are sent in full without trying; a subscribe's recovered publications make deltas up to a byte budget, then go in
// full; and a subscription holds its base as compact bytes of its own, never a view that keeps a
// larger buffer (a Redis reply's) alive.
import { isUtf8 } from 'node:buffer';
import { createDelta } from 'fossil-delta';
import type { Publication } from '../../engine/engine.js';
import { encodeStringPublicationPush, type RawJson, stringPublicationJson } from './codec.js';

/** The only delta type (Centrifugo's). */
export const FOSSIL = 'fossil';

/** Fossil deltas computed by this process (each shared by every subscription holding the same base); read by the metrics. */
export const deltaCounts = { diffs: 0 };

/** Bytes of payload a subscribe's recovered publications may make deltas of (those already made are free). */
export const RECOVERY_DELTA_BUDGET = 1 << 20;

/** Payloads smaller than this are diffed without sampling first (a delta of them is cheap). */
const SAMPLE_FROM = 1024;
const SAMPLES = 16;
const SAMPLE_BYTES = 16;

/** The caches below are emptied this long after their last addition (so a quiet node holds no payloads). */
const FORGET_AFTER_MS = 1000;
const rings: Array<Recent<unknown>> = [];
let forgetting: NodeJS.Timeout | undefined;

/** A small ring of recent entries, looked up by a predicate from the newest: under fan-out the first one looked at matches. */
class Recent<T> {
  private readonly items: Array<T | undefined>;
  private next = 0;

  constructor(size: number) {
    this.items = new Array<T | undefined>(size).fill(undefined);
    rings.push(this as Recent<unknown>);
  }

  clear(): void {
    this.items.fill(undefined);
  }

  /** The newest entry that matches (under fan-out, the one just added). */
  find(match: (item: T) => boolean): T | undefined {
    const n = this.items.length;
    for (let k = 1; k <= n; k++) {
      const item = this.items[(this.next - k + n) % n];
      if (item !== undefined && match(item)) return item;
    }
    return undefined;
  }

  add(item: T): T {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.items.length;
    if (forgetting) forgetting.refresh();
    else forgetting = setTimeout(forget, FORGET_AFTER_MS).unref();
    return item;
  }
}

function forget(): void {
  forgetting = undefined;
  for (const ring of rings) ring.clear();
}

const sameBytes = (a: Buffer, b: Buffer): boolean => a === b || a.equals(b);

/**
 * The payload as the client holds it (the UTF-8 bytes of its text), in a buffer of its own when it
 * is a view into a much larger one: a subscription may hold it as its base for long.
 */
function compactTextBytes(data: Buffer): Buffer {
  const bytes = isUtf8(data) ? data : Buffer.from(data.toString('utf8'));
  if (bytes.buffer.byteLength <= Math.max(8192, 2 * bytes.length)) return bytes;
  const own = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(own);
  return own;
}

// Each publication's bytes, made once for all its subscribers; a publication read again from
// history (its own object, the same payload) shares the bytes already held.
const textBytes = new Recent<{ pub: Publication; bytes: Buffer }>(8);
function bytesOf(pub: Publication): Buffer {
  const known = textBytes.find((e) => e.pub === pub);
  if (known) return known.bytes;
  const bytes = compactTextBytes(pub.data);
  return textBytes.add({ pub, bytes: textBytes.find((e) => e.bytes.equals(bytes))?.bytes ?? bytes }).bytes;
}

/** True unless sampling the target shows it shares little with the source (a delta would not pay). */
function worthTrying(source: Buffer, target: Buffer): boolean {
  if (target.length < SAMPLE_FROM) return true;
  let found = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const at = Math.floor(((target.length - SAMPLE_BYTES) * i) / (SAMPLES - 1));
    if (source.indexOf(target.subarray(at, at + SAMPLE_BYTES)) >= 0) found++;
  }
  return found * 4 >= SAMPLES;
}

// Deltas of recent (source, target) pairs, by content; undefined text: the full payload is sent.
const deltas = new Recent<{ source: Buffer; target: Buffer; text: string | undefined }>(16);

/**
 * A fossil delta turning `source` into `target`, as text; undefined when it would not help, or when
 * it is not known and `budget` has not `target`'s length left (what is diffed is taken from it).
 */
function deltaText(source: Buffer, target: Buffer, budget?: { left: number }): string | undefined {
  const known = deltas.find((d) => sameBytes(d.target, target) && sameBytes(d.source, source));
  if (known) return known.text;
  if (budget) {
    if (budget.left < target.length) return undefined;
    budget.left -= target.length;
  }
  let text: string | undefined;
  if (worthTrying(source, target)) {
    deltaCounts.diffs++;
    const patch = createDelta(source, target);
    // A delta may split a multi-byte character between a copy and an insert: not text, so not sent.
    if (patch.length < target.length && isUtf8(patch)) text = Buffer.from(patch.buffer, patch.byteOffset, patch.length).toString('utf8');
  }
  return deltas.add({ source, target, text }).text;
}

// The delta pushes of recent (base, publication) pairs: under fan-out every subscriber of a channel
// holds the same base, so the push is made once and its bytes shared (framed once by the outbox).
const pushes = new Recent<{ base: Buffer; pub: Publication; push: Buffer | null }>(8);

/** The delta push of `pub` against `base` on `channel`; null when the full payload is to be sent. */
function deltaPush(channel: string, base: Buffer, pub: Publication): Buffer | null {
  const known = pushes.find((p) => p.pub === pub && sameBytes(p.base, base));
  if (known) return known.push;
  const text = deltaText(base, bytesOf(pub));
  return pushes.add({ base, pub, push: text === undefined ? null : encodeStringPublicationPush(channel, pub, text, true) }).push;
}

/** One subscription's delta state: the payload its client holds. */
export class DeltaChain {
  private base: Buffer | undefined;

  /** `always`: the namespace's `delta_publish` (every publication is marked for delta). */
  constructor(private readonly always: boolean) {}

  /** The push to send for `pub`: `full` (its payload as a string, shared by every such subscriber; JSON, as the session sends no other) or a delta. */
  push(channel: string, pub: Publication, full: Buffer): Buffer {
    const base = this.base;
    this.base = bytesOf(pub);
    if (base === undefined || !(this.always || pub.delta)) return full;
    return deltaPush(channel, base, pub) ?? full;
  }

  /** The wire form of a publication in a reply (recovery), continuing the chain within `budget`. */
  json(pub: Publication, budget: { left: number }): RawJson {
    const base = this.base;
    const target = (this.base = bytesOf(pub));
    const text = base !== undefined && (this.always || pub.delta) ? deltaText(base, target, budget) : undefined;
    return text === undefined ? stringPublicationJson(pub, pub.data.toString('utf8'), false) : stringPublicationJson(pub, text, true);
  }
}
