// Webdis HTTP requests as commands: `/[<db>/]COMMAND/arg1/arg2[.ext]`, URL-decoded argument by
// argument (`%2f` is a `/` inside an argument, `+` a space), and the reply formats the extension
// picks (`.json`, `.raw`, or a content type for the string value: `.txt`, `.html`, `.png`…).
import { replyJson, jsonp } from './json-codec.js';
import { replyMsgpack } from './msgpack-codec.js';
import { encodeResp, type RespValue } from './resp.js';

/** How a reply is written. */
export interface ReplyFormat {
  /** `json`: Webdis JSON (JSONP-capable); `raw`: RESP; `msgpack`: MessagePack; `custom`: the string value as is. */
  readonly render: 'json' | 'raw' | 'msgpack' | 'custom';
  readonly contentType: string;
}

/** The extensions Webdis knows; any other `.something` stays part of the last argument. */
export const FORMATS: Readonly<Record<string, ReplyFormat>> = {
  json: { render: 'json', contentType: 'application/json' },
  js: { render: 'json', contentType: 'application/javascript' },
  raw: { render: 'raw', contentType: 'binary/octet-stream' },
  msg: { render: 'msgpack', contentType: 'application/x-msgpack' },
  bin: { render: 'custom', contentType: 'binary/octet-stream' },
  txt: { render: 'custom', contentType: 'text/plain' },
  html: { render: 'custom', contentType: 'text/html' },
  xhtml: { render: 'custom', contentType: 'application/xhtml+xml' },
  xml: { render: 'custom', contentType: 'text/xml' },
  png: { render: 'custom', contentType: 'image/png' },
  jpg: { render: 'custom', contentType: 'image/jpeg' },
  jpeg: { render: 'custom', contentType: 'image/jpeg' },
  css: { render: 'custom', contentType: 'text/css' },
};

/** A command read from a request. */
export interface HttpCommand {
  readonly args: Buffer[];
  /** The database of a `/<n>/COMMAND/…` request. */
  readonly db: number | undefined;
  readonly format: ReplyFormat;
}

/** The query parameters Webdis reads. */
export interface HttpOptions {
  /** `?jsonp=fn` or `?callback=fn`. */
  readonly jsonp: string | undefined;
  /** `?type=text/plain`: the reply as a string value with this content type. */
  readonly type: string | undefined;
  /** `?sep=,`: joins a list's strings in custom formats. */
  readonly sep: string;
  /** `?filename=x`: sent as `Content-Disposition: attachment`. */
  readonly filename: string | undefined;
}

/** A JavaScript identifier path (`cb`, `jQuery123_456`, `ns.fn`, `a[0]`): nothing that could inject script. */
const CALLBACK = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*|\[\d+\])*$/;
/** A media type `type/subtype` with optional parameters, without characters a header cannot hold. */
const MEDIA_TYPE = /^[\w.+-]+\/[\w.+-]+(?:\s*;[\x20-\x7e]*)?$/;

/** Reads the query string; undefined for a callback or type that is not safe to send back. */
export function readOptions(query: string): HttpOptions | undefined {
  const q = new URLSearchParams(query);
  const callback = q.get('jsonp') ?? q.get('callback') ?? undefined;
  const type = q.get('type') ?? undefined;
  if ((callback !== undefined && !CALLBACK.test(callback)) || (type !== undefined && !MEDIA_TYPE.test(type))) return undefined;
  const filename = q.get('filename') ?? undefined;
  // A header value holds printable ASCII; quotes and backslashes would end the quoted filename.
  return { jsonp: callback, type, sep: q.get('sep') ?? '', filename: filename?.replace(/[^\x20-\x7e]|["\\]/g, '_') };
}

/**
 * Reads `[<db>/]COMMAND/arg…[.ext]` (no leading slash, no query). `extra` is appended as the last
 * argument (a PUT body). Undefined when there is no command.
 */
export function parseCommandPath(uri: string, options: HttpOptions, extra?: Buffer): HttpCommand | undefined {
  let format = FORMATS.json!;
  const dot = uri.lastIndexOf('.');
  if (dot > 0 && dot > uri.lastIndexOf('/')) {
    const known = FORMATS[uri.slice(dot + 1)];
    if (known) {
      format = known;
      uri = uri.slice(0, dot);
    }
  }
  if (options.type) format = { render: 'custom', contentType: options.type };
  const segments = uri.split('/');
  let db: number | undefined;
  if (segments.length > 1 && /^\d{1,9}$/.test(segments[0]!)) db = Number(segments.shift());
  if (segments[0] === '') return undefined;
  const args = segments.map(decodeArgument);
  if (extra) args.push(extra);
  return { args, db, format };
}

/** `%XX` to its byte and `+` to a space; a `%` not followed by two hex digits stays as it is. */
export function decodeArgument(segment: string): Buffer {
  // The request line arrives as latin1 text: each character is one byte of the URL.
  const bytes = Buffer.from(segment, 'latin1');
  const out = Buffer.allocUnsafe(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === 0x2b) {
      out[n++] = 0x20;
    } else if (c === 0x25 && i + 2 < bytes.length && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
      out[n++] = parseInt(String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!), 16);
      i += 2;
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

/** A rendered reply: a body, or a status without one (custom formats answer 404 for nil). */
export type RenderedReply = { readonly body: Buffer } | { readonly status: number };

/** Renders a reply in the request's format. */
export function renderReply(verb: string, value: RespValue, raw: Buffer | undefined, format: ReplyFormat, options: HttpOptions): RenderedReply {
  switch (format.render) {
    case 'json': {
      const json = replyJson(verb, value);
      return { body: Buffer.from(options.jsonp ? jsonp(options.jsonp, json) : json) };
    }
    case 'raw':
      return { body: raw ?? encodeResp(value) };
    case 'msgpack':
      return { body: replyMsgpack(verb, value) };
    case 'custom':
      return renderCustom(value, options.sep);
  }
}

/** The string value as is; status and error with their `+`/`-`; a list's strings joined by `sep`. */
function renderCustom(value: RespValue, sep: string): RenderedReply {
  switch (value.type) {
    case 'bulk':
      return value.data === null ? { status: 404 } : { body: value.data };
    case 'status':
      return { body: Buffer.from(`+${value.text}`) };
    case 'error':
      return { body: Buffer.from(`-${value.text}`) };
    case 'integer':
      return { body: Buffer.from(value.text) };
    case 'array': {
      if (value.items === null) return { status: 404 };
      const parts: Buffer[] = [];
      for (const item of value.items) {
        if (item.type !== 'bulk' || item.data === null) continue;
        if (parts.length > 0 && sep) parts.push(Buffer.from(sep));
        parts.push(item.data);
      }
      return { body: Buffer.concat(parts) };
    }
  }
}
