// Stream recovery: deciding whether the publications read after a client's position prove that
// nothing was missed, and merging publications that arrived live while the history was read.
import type { Publication, StreamPosition } from '../../engine/engine.js';

/** What the client asked to recover from. */
export interface RecoverFrom {
  readonly offset: number;
  readonly epoch: string;
}

/**
 * True when `pubs` (read after `from.offset`) are exactly what the client missed: same epoch (or
 * none given), and either nothing was published since, or the pubs run from offset+1 to the top.
 */
export function isRecovered(pubs: readonly Publication[], top: StreamPosition, from: RecoverFrom): boolean {
  if (from.epoch !== '' && from.epoch !== top.epoch) return false;
  if (pubs.length === 0) return top.offset === from.offset;
  return pubs[0]!.offset === from.offset + 1 && pubs[pubs.length - 1]!.offset === top.offset;
}

/** A live publication held while its subscription was being set up. */
export interface Buffered {
  readonly pub: Publication;
  readonly position: StreamPosition;
  readonly bytes: Buffer;
}

/**
 * Of the publications that arrived live during setup, the ones to send after the reply, given the
 * last offset the reply covers. Returns null when they show a gap (the client must recover again).
 */
export function liveAfter(buffered: readonly Buffered[], lastOffset: number, epoch: string): Buffered[] | null {
  const out: Buffered[] = [];
  let next = lastOffset + 1;
  for (const b of buffered) {
    // Published without history (`skip_history`): no place in the stream, nothing to check.
    if (b.pub.offset === 0) {
      out.push(b);
      continue;
    }
    if (b.position.epoch !== epoch) return null;
    if (b.pub.offset < next) continue; // already covered by history
    if (b.pub.offset !== next) return null;
    out.push(b);
    next++;
  }
  return out;
}
