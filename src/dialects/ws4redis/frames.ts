// ws4redis payloads on the wire: the bytes as published, no wrapping. Valid UTF-8 goes out as a text
// frame, anything else as a binary frame (ws4redis sends text frames that browsers then reject).
import { isUtf8 } from 'node:buffer';
import type { Publication } from '../../engine/engine.js';

/** The ws4redis dialect's wire format name in the hub. */
export const WS4REDIS_FORMAT = 'ws4redis';

// The hub hands the encoder's Buffer to every subscriber, so the UTF-8 check runs once per
// publication, not once per socket.
const textual = new WeakMap<Buffer, boolean>();

/** The hub encoder: the payload as is (its text-or-binary verdict cached for the subscribers). */
export function encodePayload(_channel: string, pub: Publication): Buffer {
  textual.set(pub.data, isUtf8(pub.data));
  return pub.data;
}

/** True when the bytes go out as a text frame (they are valid UTF-8). */
export function isText(bytes: Buffer): boolean {
  let text = textual.get(bytes);
  if (text === undefined) {
    text = isUtf8(bytes);
    textual.set(bytes, text);
  }
  return text;
}
