// Control messages: the server API calls that act on connections (subscribe, unsubscribe,
// disconnect, refresh) travel through the engine to every node, and each node applies them to its
// own connections. With the memory engine the only node is this one.
import type { Logger } from 'pino';
import { expireAtMs } from '../auth/tokens.js';
import type { SessionRegistry } from '../dialects/native/registry.js';
import { asObject, num, str } from '../dialects/native/fields.js';
import type { NativeSession } from '../dialects/native/session.js';
import { feedPassedOn } from '../dialects/native/emulation.js';
import { stringify } from '../dialects/native/codec.js';
import { Disconnects } from '../dialects/native/codes.js';
import { parseKeepingPayloads, payloadText } from '../server/json-source.js';
import { SURVEY_ANSWER, SURVEY_ASK, type ChannelSurveys } from './survey.js';

/** A control message: an API method and its (already validated) parameters. */
export interface ControlMessage {
  readonly method: string;
  readonly params: Record<string, unknown>;
}

/** Serialises a control message. */
export function encodeControl(message: ControlMessage): Buffer {
  return Buffer.from(stringify(message));
}

/** Applies a control message from any node to this node (`nodeId`) and its connections. */
export function applyControl(registry: SessionRegistry<NativeSession>, bytes: Buffer, log: Logger, nodeId: string, surveys?: ChannelSurveys): void {
  let message: ControlMessage;
  try {
    message = parseKeepingPayloads(bytes.toString('utf8')) as ControlMessage;
  } catch {
    log.warn('dropped an unreadable control message');
    return;
  }
  const req = asObject(message.params);
  if (message.method === 'emulation') {
    // Commands of an HTTP streaming or SSE session, sent to another node's `/emulation`.
    if (req.node !== nodeId || typeof req.session !== 'string' || typeof req.data !== 'string') return;
    feedPassedOn(registry, req.session, req.data);
    return;
  }
  if (message.method === SURVEY_ASK || message.method === SURVEY_ANSWER) {
    if (message.method === SURVEY_ASK) surveys?.ask(req);
    else surveys?.answer(req);
    return;
  }
  const sessions = typeof req.user === 'string' ? registry.find(req.user, str(req.client) || undefined, str(req.session) || undefined) : [];
  if (sessions.length === 0) return;
  const channel = str(req.channel);
  const failed = (err: unknown) => log.warn({ err, method: message.method }, 'control action failed');
  switch (message.method) {
    case 'subscribe': {
      const since = req.recover_since === undefined ? undefined : asObject(req.recover_since);
      const recoverSince = since ? { offset: num(since.offset), epoch: str(since.epoch) } : undefined;
      // `data`/`info` (or their base64 forms) and `override` are read as a token's claims are.
      const expireAt = expireAtMs(req); // an integer (checked by the API call); 0 or less: never
      for (const s of sessions) s.serverSubscribe(channel, { claims: req, recoverSince, expireAt }).catch(failed);
      return;
    }
    case 'unsubscribe':
      for (const s of sessions) s.serverUnsubscribe(channel).catch(failed);
      return;
    case 'disconnect': {
      const spec = asObject(req.disconnect);
      const code = typeof spec.code === 'number' ? spec.code : Disconnects.forceNoReconnect.code;
      const reason = typeof spec.reason === 'string' ? spec.reason : code === Disconnects.forceNoReconnect.code ? Disconnects.forceNoReconnect.reason : '';
      const keep = new Set(Array.isArray(req.whitelist) ? req.whitelist : []);
      for (const s of sessions) if (!keep.has(s.id)) s.close({ code, reason });
      return;
    }
    case 'refresh': {
      const expireAt = req.expire_at === undefined ? undefined : num(req.expire_at);
      const info = payloadText(req, 'info');
      for (const s of sessions) s.serverRefresh({ expired: req.expired === true, expireAt, info });
      return;
    }
    default:
      log.warn({ method: message.method }, 'unknown control method');
  }
}
