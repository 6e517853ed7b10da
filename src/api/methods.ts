// The server API methods (Centrifugo v6 style), independent of transport: the HTTP handler and the
// in-process API call the same functions, so both answer the same.
import type { Logger } from 'pino';
import type { ChannelRules } from '../auth/channels.js';
import type { HeraldConfig } from '../config/schema.js';
import type { Engine, NodeInfo, PublishResult } from '../engine/engine.js';
import type { ChannelSurveys } from './survey.js';
import { encodeControl } from './control.js';
import { isEngineUnavailable } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import { historyOf, readHistory } from '../dialects/native/publish-history.js';
import { Disconnects, Errors, ReplyError, type ProtocolError } from '../dialects/native/codes.js';
import { presenceOptions, readPresence } from '../dialects/native/presence.js';
import type { SessionRegistry } from '../dialects/native/registry.js';
import { asObject, checkPublicationData, PublishPayload, str } from '../dialects/native/fields.js';
import type { NativeSession } from '../dialects/native/session.js';
import { payloadText } from '../server/json-source.js';
import { NODE_CHANNEL } from '../dialects/native/emulation.js';

/** What the API methods act on. */
export interface ApiContext {
  readonly config: HeraldConfig;
  readonly engine: Engine;
  readonly hub: Hub;
  readonly rules: ChannelRules;
  readonly registry: SessionRegistry<NativeSession>;
  readonly log: Logger;
  /** Client connections of every dialect on this node (defaults to the native ones). */
  readonly connections?: () => number;
  /** Counts API calls by method and result (`ok` or the error code), when metrics are on. */
  readonly countCall?: (method: string, result: string) => void;
  readonly node: { readonly uid: string; readonly name: string; readonly version: string; readonly startedAt: number };
  /** The channels of every node (the `channels` method). */
  readonly surveys: ChannelSurveys;
}

/** One API method: request object in, result object out (throws ReplyError for API errors). */
type Method = (ctx: ApiContext, req: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** A raw JSON value in a result (publication data), written verbatim by the HTTP layer. */
export { RawJson } from '../dialects/native/codec.js';

const channelOf = (channel: unknown): string => {
  if (typeof channel !== 'string' || channel === '') throw new ReplyError({ ...Errors.badRequest, message: 'channel required' });
  return channel;
};

const requireChannel = (req: Record<string, unknown>): string => channelOf(req.channel);

/** The connections a call acts on: `user`, narrowed by `client` and `session` when given (strings). */
const requireUser = (req: Record<string, unknown>): string => {
  if (typeof req.user !== 'string') throw new ReplyError({ ...Errors.badRequest, message: 'user required' });
  for (const field of ['client', 'session'] as const) {
    const value = req[field];
    if (value !== undefined && value !== null && typeof value !== 'string') throw new ReplyError({ ...Errors.badRequest, message: `${field} must be a string` });
  }
  return req.user;
};

/** The flags a subscription's `override` may set, each `{"value": bool}` (Centrifugo's SubscribeOptionOverride). */
const OVERRIDE_FLAGS = new Set(['presence', 'join_leave', 'force_push_join_leave', 'force_recovery', 'force_positioning']);

/** An API `subscribe`'s `override`, refused (107) when Centrifugo could not read it. */
const checkOverride = (override: unknown): void => {
  if (override === undefined || override === null) return;
  const ok =
    typeof override === 'object' &&
    !Array.isArray(override) &&
    Object.entries(override).every(([name, flag]) => {
      if (!OVERRIDE_FLAGS.has(name)) return false;
      if (flag === null) return true;
      const value = (flag as { value?: unknown }).value;
      return typeof flag === 'object' && !Array.isArray(flag) && (value === undefined || value === null || typeof value === 'boolean');
    });
  if (!ok) throw new ReplyError({ ...Errors.badRequest, message: `override: an object of ${[...OVERRIDE_FLAGS].join(', ')}, each {"value": true or false}` });
};

/**
 * Standard base64 (RFC 4648, padded), as Centrifugo decodes `b64data`; line breaks are skipped. Read
 * as a character run and a length, not one regular expression group per 4 characters (whose matcher
 * runs out of stack on megabytes).
 */
const isBase64 = (b64: string): boolean => b64.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(b64);

/** The payload of a publish request: `b64data` decoded, or `data` as it was received (with its JSON value); never empty. */
function publicationData(req: Record<string, unknown>): PublishPayload {
  if (req.b64data !== undefined && req.b64data !== '') {
    const b64 = typeof req.b64data === 'string' ? req.b64data.replace(/[\r\n]/g, '') : '';
    if (!isBase64(b64)) throw new ReplyError({ ...Errors.badRequest, message: 'b64data is not base64' });
    const data = Buffer.from(b64, 'base64');
    if (data.length === 0) throw new ReplyError({ ...Errors.badRequest, message: 'data required' });
    return new PublishPayload(data);
  }
  const text = payloadText(req, 'data');
  if (text === undefined) throw new ReplyError({ ...Errors.badRequest, message: 'data required' });
  return new PublishPayload(Buffer.from(text), { value: req.data });
}

/**
 * Publishes `req` to `channel` (checked here: the publish method passes its request's field as is).
 * Never throws: a refused request is a rejected promise. Not an async function, which would cost a
 * suspended frame and an await per call on the API's most frequent path. `payload`: a broadcast's,
 * read once for all its channels.
 */
const publishTo = (ctx: ApiContext, channelField: unknown, req: Record<string, unknown>, payload?: PublishPayload): Promise<Record<string, unknown>> => {
  try {
    const channel = channelOf(channelField);
    const opts = ctx.rules.options(channel);
    if (!opts) throw new ReplyError(Errors.unknownChannel);
    const read = payload ?? publicationData(req);
    checkPublicationData(ctx.rules, opts, read);
    const data = read.data;
    let tags: Record<string, string> | undefined;
    if (req.tags !== undefined && req.tags !== null) {
      const t = asObject(req.tags);
      if (t !== req.tags || !Object.values(t).every((v) => typeof v === 'string')) {
        throw new ReplyError({ ...Errors.badRequest, message: 'tags must map strings to strings' });
      }
      tags = t as Record<string, string>;
    }
    const history = flag(req, 'skip_history') ? undefined : historyOf(opts);
    // `delta`: subscribers that negotiated delta compression may be sent a delta (see native/delta.ts).
    const published = ctx.engine.publish(channel, {
      data,
      tags,
      history,
      idempotencyKey: str(req.idempotency_key) || undefined,
      delta: flag(req, 'delta'),
      version: versionOf(req),
    });
    return published.then(history ? positionResult : emptyResult);
  } catch (err) {
    return Promise.reject(err);
  }
};

/** A boolean field: absent or null is false; anything but a boolean is 107 (Centrifugo cannot decode it). */
const flag = (req: Record<string, unknown>, name: string): boolean => {
  const value = req[name];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw new ReplyError({ ...Errors.badRequest, message: `${name} must be true or false` });
  return value;
};

/**
 * A publish's `version` and `version_epoch` (Centrifugo v6): on a channel with history, a publication
 * whose version is not above the last one's is dropped, and the call answers the stream's top.
 */
const versionOf = (req: Record<string, unknown>): { value: number; epoch: string } | undefined => {
  const { version, version_epoch: epoch } = req;
  if (epoch !== undefined && epoch !== null && typeof epoch !== 'string') throw new ReplyError({ ...Errors.badRequest, message: 'version_epoch must be a string' });
  if (version === undefined || version === null || version === 0) return undefined;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    throw new ReplyError({ ...Errors.badRequest, message: 'version must be an integer from 0 to 2^53-1' });
  }
  return { value: version, epoch: epoch ?? '' };
};

/** The channel of a presence call: in a known namespace that keeps presence (102, 108 otherwise). */
const presenceChannel = (ctx: ApiContext, req: Record<string, unknown>): string => {
  const channel = requireChannel(req);
  presenceOptions(ctx.rules, channel);
  return channel;
};

const positionResult = ({ position }: PublishResult): Record<string, unknown> => ({ offset: position.offset, epoch: position.epoch });
const emptyResult = (): Record<string, unknown> => ({});

const sendControl = (ctx: ApiContext, method: string, params: Record<string, unknown>): Promise<void> =>
  ctx.engine.publishControl(encodeControl({ method, params }));

/** Every method of the server API, by name. */
export const apiMethods: Readonly<Record<string, Method>> = {
  // Not async itself (publishTo is): one promise per call fewer, for the most frequent call.
  publish(ctx, req) {
    return publishTo(ctx, req.channel, req);
  },

  async broadcast(ctx, req) {
    const channels = req.channels;
    // No channels, or one that is not a string (Centrifugo could not decode the request): the call
    // fails. An empty name fails in its own place among the responses, the others are published.
    if (!Array.isArray(channels) || channels.length === 0 || !channels.every((c) => typeof c === 'string')) {
      throw new ReplyError({ ...Errors.badRequest, message: 'channels required' });
    }
    // One payload for every channel (its JSON value read at most once).
    const shared = publicationData(req);
    const responses = await Promise.all(
      channels.map(async (channel: string) => {
        try {
          return { result: await publishTo(ctx, channel, req, shared) };
        } catch (err) {
          return { error: toApiError(err) };
        }
      }),
    );
    return { responses };
  },

  // The four methods acting on connections reach every node: they are checked here, then sent as
  // control messages that each node applies to its own connections (control.ts).
  async subscribe(ctx, req) {
    const channel = requireChannel(req);
    requireUser(req);
    if (!ctx.rules.options(channel)) throw new ReplyError(Errors.unknownChannel);
    checkOverride(req.override);
    // `expire_at`: Unix seconds when the subscription expires (0 or less: never; already past: it
    // ends after the grace, as in Centrifugo); anything but an integer is 107.
    const expireAt = req.expire_at;
    if (expireAt !== undefined && expireAt !== null && !Number.isInteger(expireAt)) throw new ReplyError(Errors.badRequest);
    await sendControl(ctx, 'subscribe', req);
    return {};
  },

  async unsubscribe(ctx, req) {
    requireUser(req);
    const channel = str(req.channel);
    // No channel: nothing to leave (Centrifugo answers {} too). A channel of no namespace: 102.
    if (channel === '') return {};
    if (!ctx.rules.options(channel)) throw new ReplyError(Errors.unknownChannel);
    await sendControl(ctx, 'unsubscribe', req);
    return {};
  },

  async disconnect(ctx, req) {
    requireUser(req);
    const spec = asObject(req.disconnect);
    const code = spec.code === undefined ? Disconnects.forceNoReconnect.code : spec.code;
    // Any code a WebSocket close frame may carry (Centrifugo passes any on; one outside these could
    // not be sent, and the client would see its connection fail instead).
    if (typeof code !== 'number' || !isCloseCode(code)) {
      throw new ReplyError({ ...Errors.badRequest, message: 'disconnect.code must be 3000-4999 (or 1000-1003, 1007-1014)' });
    }
    await sendControl(ctx, 'disconnect', req);
    return {};
  },

  async refresh(ctx, req) {
    requireUser(req);
    await sendControl(ctx, 'refresh', req);
    return {};
  },

  async presence(ctx, req) {
    return readPresence(ctx.engine, presenceChannel(ctx, req), 'presence');
  },

  async presence_stats(ctx, req) {
    return readPresence(ctx.engine, presenceChannel(ctx, req), 'presence_stats');
  },

  async history(ctx, req) {
    const channel = requireChannel(req);
    const opts = ctx.rules.options(channel);
    if (!opts) throw new ReplyError(Errors.unknownChannel);
    if (opts.history_size === 0) throw new ReplyError(Errors.notAvailable);
    return readHistory(ctx.engine, channel, opts, req, 0);
  },

  async history_remove(ctx, req) {
    const channel = requireChannel(req);
    const opts = ctx.rules.options(channel);
    if (!opts) throw new ReplyError(Errors.unknownChannel);
    if (opts.history_size === 0) throw new ReplyError(Errors.notAvailable);
    await ctx.engine.removeHistory(channel);
    return {};
  },

  async channels(ctx, req) {
    if (req.pattern !== undefined && req.pattern !== null && typeof req.pattern !== 'string') throw new ReplyError({ ...Errors.badRequest, message: 'pattern must be a string' });
    // A pattern no node could read is 107, from this node's own match before any other is asked.
    const pattern = str(req.pattern);
    const channels: Record<string, { num_clients: number }> = {};
    for (const [name, count] of await ctx.surveys.channels(pattern)) channels[name] = { num_clients: count };
    return { channels };
  },

  async info(ctx) {
    // This node's numbers fresh, the others' as last announced through the engine.
    const self = nodeInfo(ctx);
    // Without what nodes announce for each other alone (whether a node has a control channel of its own).
    const others = (await ctx.engine.nodes()).filter((n) => n.uid !== self.uid).map(({ [NODE_CHANNEL]: _own, ...shown }) => shown as NodeInfo);
    return { nodes: [self, ...others].sort((a, b) => String(a.name).localeCompare(String(b.name)) || a.uid.localeCompare(b.uid)) };
  },

  async rpc(_ctx, req) {
    // No server-side RPC handlers are registered: a method is not found (104), as in Centrifugo.
    if (str(req.method) === '') throw new ReplyError({ ...Errors.badRequest, message: 'method required' });
    throw new ReplyError(Errors.methodNotFound);
  },

  async batch(ctx, req) {
    const commands = req.commands ?? [];
    if (!Array.isArray(commands)) throw new ReplyError({ ...Errors.badRequest, message: 'commands must be a list' });
    // No commands: `{}`, as Centrifugo leaves an empty `replies` out.
    if (commands.length === 0) return {};
    const run = async (cmd: unknown): Promise<Record<string, unknown>> => {
      const entry = Object.entries(asObject(cmd)).find(([name]) => name !== 'batch' && Object.hasOwn(apiMethods, name));
      if (!entry) return { error: { code: Errors.methodNotFound.code, message: Errors.methodNotFound.message } };
      const [name, params] = entry;
      try {
        return { [name]: await apiMethods[name]!(ctx, asObject(params)) };
      } catch (err) {
        return { error: toApiError(err) };
      }
    };
    const replies = req.parallel === true ? await Promise.all(commands.map(run)) : [];
    if (req.parallel !== true) for (const cmd of commands) replies.push(await run(cmd));
    return { replies };
  },
};

/** What this node announces about itself (the `info` method's entry for it). */
export function nodeInfo(ctx: ApiContext): NodeInfo {
  const { node, registry, hub } = ctx;
  const info: NodeInfo = {
    uid: node.uid,
    name: node.name,
    version: node.version,
    num_clients: ctx.connections?.() ?? registry.size,
    num_users: registry.users,
    num_channels: hub.channelCount(),
    num_subs: hub.subscriptionCount(),
    uptime: Math.floor((Date.now() - node.startedAt) / 1000),
  };
  // Centrifugo leaves a zero out.
  if (info.uptime === 0) delete (info as { uptime?: number }).uptime;
  return info;
}

/** A code `ws` can send in a close frame. */
const isCloseCode = (code: number): boolean =>
  Number.isInteger(code) && ((code >= 3000 && code <= 4999) || (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006));

/** The API error for a thrown value (unknown errors are internal errors). */
export function toApiError(err: unknown): ProtocolError {
  if (err instanceof ReplyError) return { code: err.error.code, message: err.error.message };
  if (isEngineUnavailable(err)) {
    return { code: Errors.internal.code, message: `engine unavailable, retry later: ${err.message}` };
  }
  return { code: Errors.internal.code, message: Errors.internal.message };
}
