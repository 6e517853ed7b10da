// The publish and history commands of the native dialect, and the history reads they share with
// subscription setup and the server API.
import { canPublish, canReadHistory } from '../../auth/channels.js';
import type { NamespaceOptions } from '../../config/schema.js';
import type { Publication } from '../../engine/engine.js';
import { payloadText } from '../../server/json-source.js';
import { encodeResult, isJsonPayload, publicationJson } from './codec.js';
import { Disconnects, DisconnectError, Errors, ReplyError } from './codes.js';
import { asObject, channelOptions, channelOrBadRequest, checkPublicationData, isStreamType, num, PublishPayload, str } from './fields.js';
import { askChannelProxy, publishedData } from './proxy.js';
import type { NativeSession } from './session.js';

/** The `publish` command. */
export async function handlePublish(s: NativeSession, id: number, req: Record<string, unknown>): Promise<void> {
  const channel = channelOrBadRequest(req);
  const opts = channelOptions(s.ctx.rules, channel);
  if (!isStreamType(req.type)) throw new ReplyError(Errors.badRequest); // a map publish (keys) is not offered
  const proxied = opts.publish_proxy_enabled;
  if (!proxied && !canPublish(opts, s.user, s.subs.has(channel), s.ctx.config.client.insecure)) throw new ReplyError(Errors.permissionDenied);
  const text = payloadText(req, 'data');
  if (text === undefined) throw new ReplyError(Errors.badRequest);
  let payload = new PublishPayload(Buffer.from(text), { value: req.data });
  checkPublicationData(s.ctx.rules, opts, payload);
  let history = historyOf(opts);
  if (proxied) {
    // The backend decides, and may publish other data in the client's place, or keep it out of history.
    const result = await askChannelProxy(s, 'publish', opts, channel, text);
    const replaced = publishedData(result);
    if (replaced !== undefined) {
      payload = new PublishPayload(Buffer.from(replaced));
      try {
        checkPublicationData(s.ctx.rules, opts, payload);
      } catch {
        // The backend's data, not the client's: a failing backend.
        s.ctx.log.warn({ channel }, 'the publish proxy answered data the namespace\'s publication_data_format refuses');
        throw new ReplyError(Errors.internal);
      }
    }
    if (result.skip_history === true) history = undefined;
  }
  await s.ctx.engine.publish(channel, {
    data: payload.data,
    info: { user: s.user, client: s.id, connInfo: s.connInfo, chanInfo: s.subs.get(channel)?.chanInfo },
    history,
  });
  s.write(encodeResult(id, 'publish', {}));
}

/** The `history` command. */
export async function handleHistory(s: NativeSession, id: number, req: Record<string, unknown>): Promise<void> {
  const channel = channelOrBadRequest(req);
  const opts = channelOptions(s.ctx.rules, channel);
  if (opts.history_size === 0) throw new ReplyError(Errors.notAvailable);
  if (!canReadHistory(opts, s.user, s.subs.has(channel), s.ctx.config.client.insecure)) throw new ReplyError(Errors.permissionDenied);
  const result = await readHistory(s.ctx.engine, channel, opts, req, s.ctx.config.client.history_max_publication_limit, true);
  s.write(encodeResult(id, 'history', result));
}

/**
 * Reads history for a client or API request (`limit`, `since`, `reverse`), checking `since.epoch`.
 * Shared by the native dialect and the server API, so both answer the same. `maxLimit` 0: no cap.
 */
export async function readHistory(
  engine: NativeSession['ctx']['engine'],
  channel: string,
  opts: NamespaceOptions,
  req: Record<string, unknown>,
  maxLimit: number,
  jsonClient = false,
): Promise<Record<string, unknown>> {
  // Fields of the wrong type are refused (107), as Centrifugo's decoder refuses them, rather than read as absent.
  const given = (v: unknown) => v !== undefined && v !== null;
  if (given(req.limit) && !Number.isInteger(req.limit)) throw new ReplyError({ ...Errors.badRequest, message: 'limit must be an integer' });
  let limit = given(req.limit) ? (req.limit as number) : 0;
  if (maxLimit > 0 && (limit < 0 || limit > maxLimit)) limit = maxLimit;
  else if (limit < 0) limit = -1; // the server API may read the whole stream
  const reverse = req.reverse === true;
  const sinceReq = given(req.since) ? asObject(req.since) : undefined;
  if (
    sinceReq &&
    (sinceReq !== req.since ||
      (given(sinceReq.offset) && !(Number.isInteger(sinceReq.offset) && (sinceReq.offset as number) >= 0)) ||
      (given(sinceReq.epoch) && typeof sinceReq.epoch !== 'string'))
  ) {
    throw new ReplyError({ ...Errors.badRequest, message: 'since must be {offset: integer ≥ 0, epoch: string}' });
  }
  const since = sinceReq ? { offset: num(sinceReq.offset), epoch: str(sinceReq.epoch) } : undefined;
  if (reverse && since && since.offset === 0) throw new ReplyError(Errors.badRequest);
  const hist = await engine.history(channel, { limit, reverse, since, metaTtlMs: metaTtlOf(opts) });
  if (since && since.epoch !== '' && since.epoch !== hist.position.epoch) throw new ReplyError(Errors.unrecoverablePosition);
  if (jsonClient) assertJsonPayloads(hist.publications);
  return {
    publications: hist.publications.map(publicationJson),
    epoch: hist.position.epoch,
    offset: hist.position.offset,
  };
}

/** The engine's history settings for a namespace (none when the namespace keeps no history). */
export function historyOf(opts: NamespaceOptions): { size: number; ttlMs: number; metaTtlMs?: number } | undefined {
  return opts.history_size > 0 ? { size: opts.history_size, ttlMs: opts.history_ttl, metaTtlMs: metaTtlOf(opts) } : undefined;
}

/** How long a namespace's stream positions live: its own `history_meta_ttl`, or (undefined) the node's. */
export function metaTtlOf(opts: NamespaceOptions): number | undefined {
  return opts.history_meta_ttl > 0 ? opts.history_meta_ttl : undefined;
}

/** A JSON client cannot be sent a non-JSON payload: it is disconnected with 3506. */
export function assertJsonPayloads(pubs: readonly Publication[]): void {
  if (!pubs.every((p) => isJsonPayload(p.data))) throw new DisconnectError(Disconnects.inappropriateProtocol);
}
