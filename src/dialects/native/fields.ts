// Reading a command's fields: what a client or the server API sends is only what it says it is once
// read through these (an absent or malformed field reads as empty).
import type { ChannelRules } from '../../auth/channels.js';
import type { NamespaceOptions } from '../../config/schema.js';
import { Disconnects, DisconnectError, Errors, ReplyError } from './codes.js';

/** Reads `channel` from a request; an empty channel is a protocol violation (3501). */
export function channelOrBadRequest(req: Record<string, unknown>): string {
  const channel = req.channel;
  if (typeof channel !== 'string' || channel === '') throw new DisconnectError(Disconnects.badRequest);
  return channel;
}

/**
 * The namespace options of a channel a client command names: 102 when its namespace is not
 * configured, 107 when the namespace's `channel_regex` does not allow the name (as Centrifugo checks
 * it, before any permission).
 */
export function channelOptions(rules: ChannelRules, channel: string): NamespaceOptions {
  const opts = rules.options(channel);
  if (!opts) throw new ReplyError(Errors.unknownChannel);
  if (!rules.nameAllowed(channel, opts)) throw new ReplyError(Errors.badRequest);
  return opts;
}

/**
 * A payload to publish: its bytes, and its JSON value, read at most once (given when the command
 * carried it as JSON already; a broadcast checks one payload for all its channels).
 */
export class PublishPayload {
  constructor(
    readonly data: Buffer,
    /** The JSON value when known; null: the bytes are not JSON. */
    private read?: { readonly value: unknown } | null,
  ) {}

  /** The payload's JSON value, or null when it is not JSON. */
  json(): { readonly value: unknown } | null {
    if (this.read === undefined) {
      try {
        this.read = { value: JSON.parse(this.data.toString('utf8')) };
      } catch {
        this.read = null;
      }
    }
    return this.read;
  }
}

/** Refuses (107) a payload the namespace's `publication_data_format` does not allow (JSON, or a JSON object). */
export function checkPublicationData(rules: ChannelRules, options: NamespaceOptions, payload: PublishPayload): void {
  const format = rules.dataFormat(options);
  if (format === undefined) return;
  const read = payload.json();
  if (read === null) throw new ReplyError({ ...Errors.badRequest, message: 'data is not JSON (publication_data_format)' });
  const { value } = read;
  if (format === 'json_object' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new ReplyError({ ...Errors.badRequest, message: 'data is not a JSON object (publication_data_format)' });
  }
}

/** The request object of a command (an absent or malformed one reads as empty). */
export function asObject(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** A non-negative integer field (absent reads as 0). */
export function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

/** A string field (absent reads as ''). */
export function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * An `override` flag (`{"name": {"value": bool}}`, in tokens, proxy results and the API), or
 * `fallback` when the override does not name it. As Centrifugo reads it, a flag object that is there
 * sets the value, `false` unless `value` is `true` (`{}` turns the option off).
 */
export function overrideFlag(override: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const flag = override[name];
  if (typeof flag !== 'object' || flag === null || Array.isArray(flag)) return fallback;
  return (flag as { value?: unknown }).value === true;
}

/** True for a command of the stream kind (`type` absent or 0), the only one Herald offers. */
export const isStreamType = (type: unknown): boolean => type === undefined || type === null || type === 0;
