// The envelope of a publication on Redis: one JSON header line, `\n`, then the payload bytes as
// published. The header carries the stream position and the publisher's info and tags:
//   {"o":<offset>,"e":"<epoch>","t":<ms>,"i":{"u":"<user>","c":"<client>","ci":<raw json>},"g":{<tags>}}\n<data>
// The publish function (redis-functions.ts) writes the same format, so any Redis client can publish.
import type { ClientInfo, Publication, StreamPosition } from './engine.js';

const NEWLINE = 0x0a;

/** The header fields that do not depend on the stream position (info and tags), as a JSON fragment `,"i":…,"g":…`. */
export function headerExtra(info: ClientInfo | undefined, tags: Readonly<Record<string, string>> | undefined): string {
  let out = '';
  if (info) {
    const i: Record<string, unknown> = { u: info.user, c: info.client };
    let text = JSON.stringify(i);
    if (info.connInfo !== undefined) text = `${text.slice(0, -1)},"ci":${info.connInfo}}`;
    if (info.chanInfo !== undefined) text = `${text.slice(0, -1)},"hi":${info.chanInfo}}`;
    out += `,"i":${text}`;
  }
  if (tags && Object.keys(tags).length) out += `,"g":${JSON.stringify(tags)}`;
  return out;
}

/** A whole envelope (used for publications without history, which skip the server-side function). */
export function encodeEnvelope(offset: number, epoch: string, time: number, extra: string, data: Buffer): Buffer {
  const header = `{"o":${offset},"e":${JSON.stringify(epoch)},"t":${time}${extra}}\n`;
  return Buffer.concat([Buffer.from(header), data]);
}

/** Reads an envelope; returns null when the bytes are not one (a foreign publisher). */
export function decodeEnvelope(bytes: Buffer): { pub: Publication; position: StreamPosition } | null {
  const nl = bytes.indexOf(NEWLINE);
  if (nl < 0 || bytes[0] !== 0x7b) return null;
  let h: { o?: unknown; e?: unknown; t?: unknown; i?: { u?: unknown; c?: unknown; ci?: unknown; hi?: unknown }; g?: unknown };
  try {
    h = JSON.parse(bytes.subarray(0, nl).toString('utf8'));
  } catch {
    return null;
  }
  if (typeof h.o !== 'number') return null;
  const epoch = typeof h.e === 'string' ? h.e : '';
  let info: ClientInfo | undefined;
  if (h.i && typeof h.i === 'object') {
    const i: { user: string; client: string; connInfo?: string; chanInfo?: string } = { user: String(h.i.u ?? ''), client: String(h.i.c ?? '') };
    if (h.i.ci !== undefined) i.connInfo = JSON.stringify(h.i.ci);
    if (h.i.hi !== undefined) i.chanInfo = JSON.stringify(h.i.hi);
    info = i;
  }
  const tags = h.g && typeof h.g === 'object' ? (h.g as Record<string, string>) : undefined;
  const pub: Publication = {
    offset: h.o,
    data: bytes.subarray(nl + 1),
    info,
    tags,
    time: typeof h.t === 'number' ? h.t : undefined,
  };
  return { pub, position: { offset: h.o, epoch } };
}
