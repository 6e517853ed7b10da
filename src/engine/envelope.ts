// The envelope of a publication on Redis: one JSON header line, `\n`, then the payload bytes as
// published. The header carries the stream position and the publisher's info and tags:
//   {"o":<offset>,"e":"<epoch>","t":<ms>,"i":{"u":"<user>","c":"<client>","ci":<raw json>},"g":{<tags>},"d":1}\n<data>
// (`d`: published for delta compression).
// The publish function (redis-functions.ts) writes the same format, so any Redis client can publish.
// A client's join or leave travels on the same channel, as a header alone with no offset:
//   {"j":"join"|"leave","i":{…}}\n
import { parseKeepingPayloads, payloadText, type PayloadKey } from '../server/json-source.js';
import type { ClientInfo, JoinLeave, Publication, StreamPosition } from './engine.js';

/** The client info's raw JSON members, kept as written (64-bit integers, long decimals). */
const INFO_KEYS: readonly PayloadKey[] = ['ci', 'hi'];

/** Parses an envelope header or a presence entry, keeping `ci` and `hi` as written. */
export function parseKeepingInfo(text: string): unknown {
  return parseKeepingPayloads(text, INFO_KEYS);
}

const NEWLINE = 0x0a;

/** A client's info as the envelope and the presence entries carry it: `{"u":…,"c":…,"ci":…,"hi":…}`. */
export function encodeClientInfo(info: ClientInfo): string {
  let text = JSON.stringify({ u: info.user, c: info.client });
  if (info.connInfo !== undefined) text = `${text.slice(0, -1)},"ci":${info.connInfo}}`;
  if (info.chanInfo !== undefined) text = `${text.slice(0, -1)},"hi":${info.chanInfo}}`;
  return text;
}

/** Reads an `encodeClientInfo` object parsed by parseKeepingInfo (raw JSON infos as written). */
export function decodeClientInfo(i: { u?: unknown; c?: unknown; ci?: unknown; hi?: unknown }): ClientInfo {
  const info: { user: string; client: string; connInfo?: string; chanInfo?: string } = { user: String(i.u ?? ''), client: String(i.c ?? '') };
  const connInfo = payloadText(i, 'ci');
  const chanInfo = payloadText(i, 'hi');
  if (connInfo !== undefined) info.connInfo = connInfo;
  if (chanInfo !== undefined) info.chanInfo = chanInfo;
  return info;
}

/** The header fields that do not depend on the stream position (info, tags, delta), as a JSON fragment `,"i":…,"g":…,"d":1`. */
export function headerExtra(info: ClientInfo | undefined, tags: Readonly<Record<string, string>> | undefined, delta?: boolean): string {
  let out = '';
  if (info) out += `,"i":${encodeClientInfo(info)}`;
  if (tags && Object.keys(tags).length) out += `,"g":${JSON.stringify(tags)}`;
  if (delta) out += ',"d":1';
  return out;
}

/** A whole envelope (used for publications without history, which skip the server-side function). */
export function encodeEnvelope(offset: number, epoch: string, time: number, extra: string, data: Buffer): Buffer {
  const header = `{"o":${offset},"e":${JSON.stringify(epoch)},"t":${time}${extra}}\n`;
  return Buffer.concat([Buffer.from(header), data]);
}

/** The envelope of a client's join or leave. */
export function encodeJoinLeave(kind: JoinLeave, info: ClientInfo): Buffer {
  return Buffer.from(`{"j":"${kind}","i":${encodeClientInfo(info)}}\n`);
}

type Header = { o?: unknown; e?: unknown; t?: unknown; j?: unknown; d?: unknown; i?: { u?: unknown; c?: unknown; ci?: unknown; hi?: unknown }; g?: unknown };

/**
 * Reads an envelope: a publication, or a join or leave; null when the bytes are not one (a foreign
 * publisher's payload).
 */
export function decodeEnvelope(
  bytes: Buffer,
): { pub: Publication; position: StreamPosition; joinLeave?: undefined } | { joinLeave: JoinLeave; info: ClientInfo } | null {
  const nl = bytes.indexOf(NEWLINE);
  if (nl < 0 || bytes[0] !== 0x7b) return null;
  let h: Header;
  try {
    const text = bytes.subarray(0, nl).toString('utf8');
    // Only a header with a client's info has raw JSON to keep as written (most have none).
    h = (text.includes('"i":') ? parseKeepingInfo(text) : JSON.parse(text)) as Header;
  } catch {
    return null;
  }
  if (typeof h.o !== 'number') {
    const i = h.i;
    if ((h.j === 'join' || h.j === 'leave') && i && typeof i === 'object' && !Array.isArray(i) && typeof i.c === 'string' && i.c !== '' && nl === bytes.length - 1) {
      return { joinLeave: h.j, info: decodeClientInfo(i) };
    }
    return null;
  }
  const epoch = typeof h.e === 'string' ? h.e : '';
  const info = h.i && typeof h.i === 'object' ? decodeClientInfo(h.i) : undefined;
  const tags = h.g && typeof h.g === 'object' ? (h.g as Record<string, string>) : undefined;
  const pub: Publication = {
    offset: h.o,
    data: bytes.subarray(nl + 1),
    info,
    tags,
    time: typeof h.t === 'number' ? h.t : undefined,
    delta: h.d === 1 || undefined,
  };
  return { pub, position: { offset: h.o, epoch } };
}
