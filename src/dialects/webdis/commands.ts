// What a Webdis command does, whatever the transport: the ACL decides, PING is answered here,
// PUBLISH goes through the engine (so subscribers on every engine and node get it), and everything
// else goes to Redis when the Redis engine is configured. Pub/sub subscriptions are the caller's:
// they live as long as its socket or response.
import type { Logger } from 'pino';
import { rawChannel, type Engine } from '../../engine/engine.js';
import type { Permissions } from './acl.js';
import { isUnavailable, type Forwarder } from './forward.js';
import { bulk, error, integer, status, type RespValue } from './resp.js';

/** What a command produced. */
export type Outcome =
  /** A Redis reply; `raw` holds Redis's own bytes when it came from Redis. */
  | { readonly kind: 'reply'; readonly value: RespValue; readonly raw?: Buffer }
  /** The ACL refuses the command (HTTP 403). */
  | { readonly kind: 'forbidden' }
  /** Redis cannot be reached (HTTP 503). */
  | { readonly kind: 'unavailable' };

/** The pub/sub verbs, handled by the transport that holds the subscriptions. */
export const PUBSUB_VERBS: ReadonlySet<string> = new Set(['SUBSCRIBE', 'PSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE']);

/** The reply to any forwarded command under the memory engine. */
export const MEMORY_ENGINE_ERROR = 'ERR command not available: Herald runs the memory engine';

/** What commands need from the node. */
export interface CommandContext {
  readonly engine: Engine;
  /** Raw channel names Webdis clients may not use: Herald's own and another dialect's (DialectServices). */
  readonly reserved: (name: string) => boolean;
  /** Undefined when commands cannot be forwarded (memory engine, Redis Cluster). */
  readonly forwarder: Forwarder | undefined;
  /** The error forwarded commands get when there is no forwarder. */
  readonly noForwardError: string;
  readonly log: Logger;
}

/** The command name as Redis compares it. */
export function verbOf(args: readonly Buffer[]): string {
  return args[0]!.toString('utf8').toUpperCase();
}

/** `ERR wrong number of arguments for 'publish' command`, as Redis words it. */
export function arityError(verb: string): RespValue {
  return error(`ERR wrong number of arguments for '${verb.toLowerCase()}' command`);
}

/**
 * True when a PUBLISH or SUBSCRIBE names a reserved channel: one of the engine's own Redis channels (a
 * Herald channel's or the nodes' control channel) or another dialect's (ws4redis's, with its own
 * rules): refused whatever the ACL says, as the ACL refuses (403). Patterns are not refused: their
 * matches on reserved names are not delivered.
 */
export function namesReserved(reserved: (name: string) => boolean, verb: string, args: readonly Buffer[]): boolean {
  if (verb === 'PUBLISH') return args.length > 1 && reserved(args[1]!.toString('utf8'));
  return verb === 'SUBSCRIBE' && args.slice(1).some((a) => reserved(a.toString('utf8')));
}

/** Longest channel name a Webdis client may publish or subscribe to. */
export const MAX_CHANNEL_LENGTH = 1024;
/** Longest pattern: matching costs up to the pattern's length times the channel name's, on every publish. */
export const MAX_PATTERN_LENGTH = 128;

/** The error for a PUBLISH, SUBSCRIBE or PSUBSCRIBE naming a channel or pattern longer than allowed. */
export function nameTooLong(verb: string, args: readonly Buffer[]): RespValue | undefined {
  const max = verb === 'PSUBSCRIBE' ? MAX_PATTERN_LENGTH : verb === 'PUBLISH' || verb === 'SUBSCRIBE' ? MAX_CHANNEL_LENGTH : 0;
  if (max === 0) return undefined;
  const names = verb === 'PUBLISH' ? args.slice(1, 2) : args.slice(1);
  if (!names.some((n) => n.length > max)) return undefined;
  return error(`ERR ${verb === 'PSUBSCRIBE' ? 'pattern' : 'channel name'} longer than ${max} bytes`);
}

/** Runs a command that is not a pub/sub subscription command, after the ACL check. */
export async function runCommand(ctx: CommandContext, args: readonly Buffer[], allowed: Permissions, db?: number): Promise<Outcome> {
  const verb = verbOf(args);
  if (!allowed(verb) || namesReserved(ctx.reserved, verb, args)) return { kind: 'forbidden' };
  // PING goes to Redis, as Webdis sends it, so that it tells whether Redis answers (a health check
  // gets 503 while it does not); where commands are not forwarded (the memory engine, a Redis
  // Cluster), Herald answers.
  if (verb === 'PING' && !ctx.forwarder) {
    if (args.length === 1) return reply(status('PONG'));
    if (args.length === 2) return reply(bulk(args[1]!));
    return reply(arityError(verb));
  }
  if (verb === 'PUBLISH') {
    if (args.length !== 3) return reply(arityError(verb));
    const tooLong = nameTooLong(verb, args);
    if (tooLong) return reply(tooLong);
    try {
      const result = await ctx.engine.publish(rawChannel(args[1]!.toString('utf8')), { data: args[2]! });
      return reply(integer(result.receivers ?? 0));
    } catch (err) {
      ctx.log.debug({ err: (err as Error).message }, 'webdis publish failed');
      return { kind: 'unavailable' };
    }
  }
  if (!ctx.forwarder) return reply(error(ctx.noForwardError));
  try {
    const { value, raw } = await ctx.forwarder.call(args, db);
    return { kind: 'reply', value, raw };
  } catch (err) {
    if (!isUnavailable(err)) throw err;
    ctx.log.debug({ err: err.message }, 'webdis command not forwarded: redis unavailable');
    return { kind: 'unavailable' };
  }
}

function reply(value: RespValue): Outcome {
  return { kind: 'reply', value };
}
