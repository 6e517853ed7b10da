// Webdis JSON: the one definition of it. Requests are arrays (`["SET","k","v"]`); each reply is an
// object whose single key is the command as the client spelled it, its value the Redis reply
// converted as Webdis converts it (status → [true,"OK"], error → [false,"ERR …"], nil → null, and a
// few commands whose arrays read better as objects). JSON is written by hand, compact, so key order
// is insertion order and 64-bit integers keep every digit.
import type { RespValue } from './resp.js';

/** A request that is not a Webdis JSON command; the message is meant for the client. */
export class CommandSyntaxError extends Error {
  override readonly name = 'CommandSyntaxError';
}

/**
 * Reads a `/.json` WebSocket frame: a JSON array whose first element is the command name and whose
 * other elements are strings or numbers (a number is sent as its decimal text, as Webdis does).
 */
export function parseJsonCommand(text: string): Buffer[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CommandSyntaxError('bad request: the frame is not valid JSON');
  }
  if (!Array.isArray(value)) throw new CommandSyntaxError('bad request: expected a JSON array such as ["PING"]');
  if (value.length === 0) throw new CommandSyntaxError('bad request: empty command');
  if (typeof value[0] !== 'string' || value[0] === '') throw new CommandSyntaxError('bad request: the command name must be a non-empty string');
  return value.map((v, i) => {
    if (typeof v === 'string') return Buffer.from(v);
    if (typeof v === 'number' && Number.isFinite(v)) return Buffer.from(Number.isInteger(v) ? BigInt(v).toString() : String(v));
    throw new CommandSyntaxError(`bad request: argument ${i} must be a string or a number, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  });
}

const str = (b: Buffer | string): string => JSON.stringify(typeof b === 'string' ? b : b.toString('utf8'));

/** `{"<verb>":<reply>}`, as Webdis answers a command. */
export function replyJson(verb: string, reply: RespValue): string {
  return `{${str(verb)}:${valueJson(verb.toUpperCase(), reply)}}`;
}

/** The error object a refused or failed request gets on a `/.json` socket. */
export function errorJson(message: string, httpStatus?: number): string {
  return `{"error":true,"message":${str(message)}${httpStatus ? `,"http_status":${httpStatus}` : ''}}`;
}

/** Wraps JSON for JSONP (`fn(<json>);` and a newline, as Webdis writes it). */
export function jsonp(callback: string, json: string): string {
  return `${callback}(${json});\n`;
}

function valueJson(verb: string, r: RespValue): string {
  switch (r.type) {
    case 'status':
      return `[true,${str(r.text)}]`;
    case 'error':
      return `[false,${str(r.text)}]`;
    case 'integer':
      return r.text;
    case 'bulk':
      if (r.data === null) return 'null';
      return verb === 'INFO' ? infoJson(r.data.toString('utf8')) : str(r.data);
    case 'array': {
      if (r.items === null) return 'null';
      const special = SPECIAL_ARRAYS[verb]?.(r.items) ?? (verb.startsWith('GEORADIUS') ? georadiusJson(r.items) : undefined);
      return special ?? expandArray(r.items);
    }
  }
}

/** An array as Webdis expands it: strings, numbers, nested arrays, and null for nil (and errors). */
function expandArray(items: readonly RespValue[]): string {
  return `[${items.map(elementJson).join(',')}]`;
}

function elementJson(e: RespValue): string {
  switch (e.type) {
    case 'status':
      return str(e.text);
    case 'bulk':
      return e.data === null ? 'null' : str(e.data);
    case 'integer':
      return e.text;
    case 'array':
      return e.items === null ? 'null' : expandArray(e.items);
    default:
      return 'null';
  }
}

type Special = (items: readonly RespValue[]) => string | undefined;

const SPECIAL_ARRAYS: Readonly<Record<string, Special>> = {
  HGETALL: keyValueJson,
  XRANGE: streamEntriesJson,
  XREVRANGE: streamEntriesJson,
  XCLAIM: (items) => (items[0]?.type === 'array' ? streamEntriesJson(items) : undefined),
  XREAD: xreadJson,
  XREADGROUP: xreadJson,
  XPENDING: xpendingJson,
};

const textOf = (v: RespValue | undefined): string | undefined =>
  v?.type === 'bulk' && v.data ? v.data.toString('utf8') : v?.type === 'status' ? v.text : undefined;

/** A flat key/value array as an object (HGETALL, stream entry fields); undefined when it is not one. */
function keyValueJson(items: readonly RespValue[]): string | undefined {
  if (items.length % 2 !== 0) return undefined;
  const fields: string[] = [];
  for (let i = 0; i < items.length; i += 2) {
    const k = items[i]!;
    if (k.type !== 'bulk' || !k.data) return undefined;
    fields.push(`${str(k.data)}:${elementJson(items[i + 1]!)}`);
  }
  return `{${fields.join(',')}}`;
}

/** XRANGE entries: `[{"id":"1-0","msg":{"field":"value"}}]`. */
function streamEntriesJson(items: readonly RespValue[]): string {
  const out: string[] = [];
  for (const e of items) {
    if (e.type !== 'array' || !e.items || e.items.length < 2) continue;
    const [id, msg] = e.items;
    const idText = textOf(id);
    if (!idText || msg!.type !== 'array' || !msg!.items) continue;
    out.push(`{"id":${str(idText)},"msg":${keyValueJson(msg!.items) ?? 'null'}}`);
  }
  return `[${out.join(',')}]`;
}

/** XREAD: `{"stream":[entries…]}`. */
function xreadJson(items: readonly RespValue[]): string {
  const out: string[] = [];
  for (const e of items) {
    if (e.type !== 'array' || !e.items || e.items.length < 2) continue;
    const name = textOf(e.items[0]);
    const entries = e.items[1]!;
    if (!name || entries.type !== 'array' || !entries.items) continue;
    out.push(`${str(name)}:${streamEntriesJson(entries.items)}`);
  }
  return `{${out.join(',')}}`;
}

/** XPENDING summary as an object, or the extended form as a list of objects. */
function xpendingJson(items: readonly RespValue[]): string {
  if (items.length >= 4 && items[0]!.type === 'integer') {
    const fields = [`"msgs":${items[0]!.text}`];
    const min = textOf(items[1]);
    const max = textOf(items[2]);
    if (min !== undefined) fields.push(`"idmin":${str(min)}`);
    if (max !== undefined) fields.push(`"idmax":${str(max)}`);
    const owners = items[3]!;
    if (owners.type === 'array' && owners.items) {
      const per: string[] = [];
      for (const o of owners.items) {
        if (o.type !== 'array' || !o.items || o.items.length < 2) continue;
        const name = textOf(o.items[0]);
        if (name !== undefined) per.push(`${str(name)}:${elementJson(o.items[1]!)}`);
      }
      fields.push(`"msgsperconsumer":{${per.join(',')}}`);
    }
    return `{${fields.join(',')}}`;
  }
  const out: string[] = [];
  for (const e of items) {
    if (e.type !== 'array' || !e.items || e.items.length < 4) continue;
    const [id, owner, elapsed, deliveries] = e.items;
    const f: string[] = [];
    if (textOf(id) !== undefined) f.push(`"id":${str(textOf(id)!)}`);
    if (textOf(owner) !== undefined) f.push(`"owner":${str(textOf(owner)!)}`);
    if (elapsed!.type === 'integer') f.push(`"elapsedtime":${elapsed!.text}`);
    if (deliveries!.type === 'integer') f.push(`"deliveries":${deliveries!.text}`);
    out.push(`{${f.join(',')}}`);
  }
  return `[${out.join(',')}]`;
}

/** GEORADIUS … WITHCOORD/WITHDIST/WITHHASH: a list of `{"name","dist","hash","coords"}` objects. */
function georadiusJson(items: readonly RespValue[]): string | undefined {
  if (items[0]?.type !== 'array') return undefined;
  const out: string[] = [];
  for (const e of items) {
    if (e.type !== 'array' || !e.items || e.items.length < 1) continue;
    const f = [`"name":${str(textOf(e.items[0]) ?? '')}`];
    for (const x of e.items.slice(1)) {
      if (x.type === 'integer') f.push(`"hash":${x.text}`);
      else if (x.type === 'bulk' && x.data) f.push(`"dist":${str(x.data)}`);
      else if (x.type === 'array' && x.items?.length === 2 && x.items.every((c) => textOf(c) !== undefined)) {
        f.push(`"coords":[${x.items.map((c) => str(textOf(c)!)).join(',')}]`);
      }
    }
    out.push(`{${f.join(',')}}`);
  }
  return `[${out.join(',')}]`;
}

/** INFO's text as an object of its `key:value` lines (section headers and blank lines skipped). */
function infoJson(text: string): string {
  const fields: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push(`${str(line.slice(0, colon))}:${str(line.slice(colon + 1))}`);
  }
  return `{${fields.join(',')}}`;
}
