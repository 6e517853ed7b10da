// The JSON wire format of the native (Centrifugo) dialect: one definition of how commands are read
// and replies and pushes are written. Payload fields (`data`, `info`) are raw JSON, kept as received.
import type { ClientInfo, Publication } from '../../engine/engine.js';
import { parseKeepingPayloads, sourceOf } from '../../server/json-source.js';
import type { ProtocolError } from './codes.js';

/** A JSON value to be written verbatim (payload bytes that are already JSON text). */
export class RawJson {
  constructor(readonly text: string) {}
}

/**
 * Seconds until `expireAt` (ms since the epoch) as the protocol's `ttl`: 1 to 2^32 - 1, rounded down
 * (as Centrifugo's whole seconds are), so a client refreshing after `ttl` does so before the expiry,
 * not up to a second after it.
 */
export function ttlSeconds(expireAt: number): number {
  return Math.min(0xffffffff, Math.max(1, Math.floor((expireAt - Date.now()) / 1000)));
}

/** Raw JSON text as a value written verbatim; undefined stays absent. */
export function rawJson(text: string | undefined): RawJson | undefined {
  return text === undefined ? undefined : new RawJson(text);
}

/** Serialises a reply object, writing RawJson values as they are and omitting undefined fields. */
export function stringify(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : stringify(v))).join(',')}]`;
  // for-in over own keys: no [key, value] array per field, on replies written thousands of times a second.
  let out = '';
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue;
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) continue;
    // A payload parsed from a request is written as it was received.
    const source = k === 'data' || k === 'info' ? sourceOf(value, k) : undefined;
    out += `${out ? ',' : ''}${JSON.stringify(k)}:${source ?? stringify(v)}`;
  }
  return `{${out}}`;
}

/** The wire form of ClientInfo: `user` and `client` always present. */
export function clientInfoJson(info: ClientInfo): Record<string, unknown> {
  return {
    user: info.user,
    client: info.client,
    conn_info: rawJson(info.connInfo),
    chan_info: rawJson(info.chanInfo),
  };
}

/** True when a payload is JSON text, the only kind a JSON client can be sent (else: close 3506). */
export function isJsonPayload(data: Buffer): boolean {
  return isJsonText(data.toString('utf8'));
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** JSON text without raw `\n` (only whitespace in valid JSON; it would split the line). */
function oneLine(text: string): string {
  return text.includes('\n') ? text.replace(/\n/g, '') : text;
}

/**
 * The one definition of a Publication on the wire (zero fields omitted), as JSON text; `data` is
 * JSON text: the payload's, or (delta compression) a string. Written directly: it is on the hot
 * path, once per publication.
 */
function publicationText(pub: Publication, data: string, delta = false): string {
  let out = `{"data":${data}`;
  if (pub.info) out += `,"info":${stringify(clientInfoJson(pub.info))}`;
  if (pub.offset > 0) out += `,"offset":${pub.offset}`;
  if (pub.tags && Object.keys(pub.tags).length) out += `,"tags":${stringify(pub.tags)}`;
  if (delta) out += ',"delta":true';
  return `${out}}`;
}

/** The wire form of a Publication, for replies (history, recovery). */
export function publicationJson(pub: Publication): RawJson {
  return new RawJson(publicationText(pub, oneLine(pub.data.toString('utf8'))));
}

/**
 * The wire form of a Publication for a subscription that negotiated delta compression: `data` is a
 * string, the payload's text (`delta` false) or a fossil delta of it (`delta` true).
 */
export function stringPublicationJson(pub: Publication, text: string, delta: boolean): RawJson {
  return new RawJson(publicationText(pub, JSON.stringify(text), delta));
}

/** The one definition of a publication push; `data` is JSON text (see publicationText). */
function publicationPush(channel: string, pub: Publication, data: string, delta = false): Buffer {
  return Buffer.from(`{"push":{"channel":${JSON.stringify(channel)},"pub":${publicationText(pub, data, delta)}}}`);
}

/** A publication push whose `data` is a string (see stringPublicationJson). */
export function encodeStringPublicationPush(channel: string, pub: Publication, text: string, delta: boolean): Buffer {
  return publicationPush(channel, pub, JSON.stringify(text), delta);
}

/** A publication's payload as text, or undefined when it is not JSON (a JSON client is then sent NON_JSON_PUSH). */
function jsonPayloadText(pub: Publication): string | undefined {
  const text = pub.data.toString('utf8');
  return isJsonText(text) ? text : undefined;
}

/**
 * The publication push for subscriptions that negotiated delta compression, in full (the payload's
 * text as a string): built once per publication, as encodePublicationPush.
 */
export function encodeFullStringPush(channel: string, pub: Publication): Buffer {
  const text = jsonPayloadText(pub);
  return text === undefined ? NON_JSON_PUSH : publicationPush(channel, pub, JSON.stringify(text));
}

/**
 * Stands in for the push of a publication whose payload is not JSON (e.g. API `b64data`): a JSON
 * client given it is closed with 3506 instead of being sent a broken line.
 */
export const NON_JSON_PUSH = Buffer.alloc(0);

/** The publication push for one channel, as bytes: built once per publication, written to every subscriber. */
export function encodePublicationPush(channel: string, pub: Publication): Buffer {
  const text = jsonPayloadText(pub);
  return text === undefined ? NON_JSON_PUSH : publicationPush(channel, pub, oneLine(text));
}

/** A push to one channel (`unsubscribe`, `subscribe`, `join`, `leave`) or to the connection (`message`). */
export function encodePush(kind: string, body: unknown, channel?: string): Buffer {
  return Buffer.from(stringify({ push: { channel, [kind]: body } }));
}

/** A successful reply: the result object is always written, even when empty. */
export function encodeResult(id: number, method: string, result: Record<string, unknown>): Buffer {
  return Buffer.from(`{"id":${id},${JSON.stringify(method)}:${stringify(result)}}`);
}

/** An error reply. */
export function encodeError(id: number, error: ProtocolError): Buffer {
  const body: Record<string, unknown> = { code: error.code, message: error.message };
  if (error.temporary) body.temporary = true;
  return Buffer.from(stringify({ id, error: body }));
}

/** The server ping (an empty reply). */
export const PING = Buffer.from('{}');

/** The line separator between JSON messages in one frame. */
export const SEPARATOR = Buffer.from('\n');

/** Splits an incoming frame into decoded commands; throws on an empty frame or undecodable JSON. */
export function decodeFrame(text: string): Record<string, unknown>[] {
  const lines = text.split('\n');
  if (lines.length > 1 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length === 0 || (lines.length === 1 && lines[0]!.trim() === '')) throw new Error('empty frame');
  return lines.map((line) => {
    const cmd: unknown = parseKeepingPayloads(line);
    if (typeof cmd !== 'object' || cmd === null || Array.isArray(cmd)) throw new Error('command is not an object');
    return cmd as Record<string, unknown>;
  });
}

/** The request methods of the client protocol, in the order a command's field is looked for. */
export const METHODS = [
  'connect',
  'subscribe',
  'unsubscribe',
  'publish',
  'presence',
  'presence_stats',
  'history',
  'ping',
  'send',
  'rpc',
  'refresh',
  'sub_refresh',
] as const;

/** One request method. */
export type Method = (typeof METHODS)[number];

/** Finds the method of a command: the first known request field present. */
export function commandMethod(cmd: Record<string, unknown>): Method | undefined {
  for (const m of METHODS) if (cmd[m] !== undefined && cmd[m] !== null) return m;
  return undefined;
}
