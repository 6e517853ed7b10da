// Webdis's `.msg` replies: MessagePack, as Webdis built with msgpack-c writes them (its official
// image is): a map of one entry, the verb as sent → the reply. Strings, the verb and every Redis
// string are MessagePack's old "raw" type (fixraw, raw16, raw32: msgpack-c's v4raw), which readers
// take as strings; a status or an error is `[true|false, text]`, an integer an int, a nil or a
// nested array nil; `HGETALL`'s list is a map of its pairs and `INFO`'s text a map of its
// `key:value` lines. Written here rather than with a MessagePack library: those write binary data
// as `bin`, where Webdis's readers expect strings.
import type { RespValue } from './resp.js';

/** Collects MessagePack bytes. */
class Packer {
  private readonly parts: Buffer[] = [];

  header(fix: number, fixMax: number, tag16: number, n: number): void {
    if (n <= fixMax) this.parts.push(Buffer.from([fix | n]));
    else if (n < 0x10000) this.parts.push(Buffer.from([tag16, n >> 8, n & 0xff]));
    else {
      const b = Buffer.allocUnsafe(5);
      b[0] = tag16 + 1;
      b.writeUInt32BE(n, 1);
      this.parts.push(b);
    }
  }

  raw(bytes: Buffer | string): void {
    const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    this.header(0xa0, 31, 0xda, data.length);
    this.parts.push(data);
  }

  map(n: number): void {
    this.header(0x80, 15, 0xde, n);
  }

  array(n: number): void {
    this.header(0x90, 15, 0xdc, n);
  }

  bool(v: boolean): void {
    this.parts.push(Buffer.from([v ? 0xc3 : 0xc2]));
  }

  nil(): void {
    this.parts.push(Buffer.from([0xc0]));
  }

  /** An integer in its shortest form (Redis integers are 64-bit: read from their text). */
  int(text: string): void {
    const v = BigInt(text);
    let b: Buffer;
    if (v >= 0n) {
      if (v <= 0x7fn) b = Buffer.from([Number(v)]);
      else if (v <= 0xffn) b = Buffer.from([0xcc, Number(v)]);
      else if (v <= 0xffffn) (b = Buffer.allocUnsafe(3)), (b[0] = 0xcd), b.writeUInt16BE(Number(v), 1);
      else if (v <= 0xffffffffn) (b = Buffer.allocUnsafe(5)), (b[0] = 0xce), b.writeUInt32BE(Number(v), 1);
      else (b = Buffer.allocUnsafe(9)), (b[0] = 0xcf), b.writeBigUInt64BE(v, 1);
    } else if (v >= -32n) b = Buffer.from([Number(v) & 0xff]);
    else if (v >= -0x80n) (b = Buffer.allocUnsafe(2)), (b[0] = 0xd0), b.writeInt8(Number(v), 1);
    else if (v >= -0x8000n) (b = Buffer.allocUnsafe(3)), (b[0] = 0xd1), b.writeInt16BE(Number(v), 1);
    else if (v >= -0x80000000n) (b = Buffer.allocUnsafe(5)), (b[0] = 0xd2), b.writeInt32BE(Number(v), 1);
    else (b = Buffer.allocUnsafe(9)), (b[0] = 0xd3), b.writeBigInt64BE(v, 1);
    this.parts.push(b);
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A `{<canonical>: …}` reply (a shared push) with its key spelled `label` instead; the rest kept. */
export function relabelMsgpack(bytes: Buffer, canonical: string, label: string): Buffer {
  const head = new Packer();
  head.map(1);
  head.raw(label);
  // The shared push starts with a one-entry map (1 byte) and the canonical verb as a fixraw.
  return Buffer.concat([head.bytes(), bytes.subarray(2 + Buffer.byteLength(canonical))]);
}

/** `{<verb>: <reply>}` in MessagePack, as Webdis's `.msg` answers a command. */
export function replyMsgpack(verb: string, reply: RespValue): Buffer {
  const p = new Packer();
  p.map(1);
  p.raw(verb);
  value(p, verb.toUpperCase(), reply);
  return p.bytes();
}

function value(p: Packer, verb: string, r: RespValue): void {
  switch (r.type) {
    case 'status':
    case 'error':
      p.array(2);
      p.bool(r.type === 'status');
      p.raw(r.text);
      return;
    case 'integer':
      return p.int(r.text);
    case 'bulk':
      if (r.data === null) return p.nil();
      if (verb === 'INFO') return info(p, r.data.toString('utf8'));
      return p.raw(r.data);
    case 'array': {
      if (r.items === null) return p.nil();
      if (verb === 'HGETALL') return pairs(p, r.items);
      p.array(r.items.length);
      for (const e of r.items) {
        if (e.type === 'bulk' && e.data !== null) p.raw(e.data);
        else if (e.type === 'integer') p.int(e.text);
        else p.nil();
      }
    }
  }
}

/** A list of field, value, … as a map (only string pairs, as Webdis keeps them). */
function pairs(p: Packer, items: readonly RespValue[]): void {
  const kept: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i + 1 < items.length; i += 2) {
    const k = items[i]!;
    const v = items[i + 1]!;
    if (k.type === 'bulk' && k.data !== null && v.type === 'bulk' && v.data !== null) kept.push([k.data, v.data]);
  }
  p.map(kept.length);
  for (const [k, v] of kept) {
    p.raw(k);
    p.raw(v);
  }
}

/** INFO's text as a map of its `key:value` lines (section headers and blank lines skipped). */
function info(p: Packer, text: string): void {
  const fields: Array<[string, string]> = [];
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  p.map(fields.length);
  for (const [k, v] of fields) {
    p.raw(k);
    p.raw(v);
  }
}
