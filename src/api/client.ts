// A TypeScript client for Herald's server HTTP API, for backends written in Node.
import { HeraldError } from '../errors.js';

/** An error answered by the API (`code` is the protocol error code, e.g. 102 unknown channel). */
export class HeraldApiError extends HeraldError {
  constructor(
    /** The API error code. */
    readonly apiCode: number,
    message: string,
  ) {
    super('HERALD_ERR_API', `API error ${apiCode}: ${message}`);
    this.name = 'HeraldApiError';
  }
}

/** Options of a publish. */
export interface PublishOptions {
  readonly tags?: Record<string, string>;
  readonly skipHistory?: boolean;
  readonly idempotencyKey?: string;
  /** Sent as a fossil delta to subscribers that negotiated delta compression. */
  readonly delta?: boolean;
  /**
   * On a channel with history, a publication whose version is not above the last one's (in the same
   * `versionEpoch`) is dropped: neither sent nor kept.
   */
  readonly version?: number;
  readonly versionEpoch?: string;
}

/** A stream position returned for channels with history. */
export interface PublishResult {
  readonly offset?: number;
  readonly epoch?: string;
}

/** Calls a Herald node's HTTP API: `new HeraldApi('http://127.0.0.1:8000', key).publish('news', {text: 'hi'})`. */
export class HeraldApi {
  private readonly base: string;

  constructor(
    url: string,
    private readonly key: string,
    private readonly options: { readonly timeoutMs?: number } = {},
  ) {
    this.base = url.replace(/\/+$/, '').replace(/\/api$/, '') + '/api/';
  }

  /** Calls any API method and returns its `result`; throws HeraldApiError for API errors. */
  async call<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.base + method, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': this.key },
        body: JSON.stringify(params),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      // No answer in time, or none at all (refused, reset): a HeraldError like every other failure.
      const timedOut = (err as Error).name === 'TimeoutError';
      const why = timedOut ? `no answer within ${timeoutMs} ms` : `${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`;
      throw new HeraldError('HERALD_ERR_API', `API ${method}: ${why}`, { cause: err });
    }
    if (res.status !== 200) {
      // Transport error mode answers {code, message} with an HTTP status.
      const body = safeJson(text) as { code?: unknown; message?: unknown } | undefined;
      if (body && typeof body.code === 'number') throw new HeraldApiError(body.code, String(body.message ?? ''));
      throw new HeraldError('HERALD_ERR_API', `API ${method}: HTTP ${res.status}${text ? `: ${text.trim()}` : ''}`);
    }
    const body = JSON.parse(text) as { result?: T; error?: { code: number; message: string } } & T;
    if (body.error) throw new HeraldApiError(body.error.code, body.error.message);
    return method === 'batch' ? (body as T) : (body.result as T);
  }

  /** Publishes `data` (any JSON value) to a channel. */
  publish(channel: string, data: unknown, opts: PublishOptions = {}): Promise<PublishResult> {
    return this.call('publish', { channel, data, ...publishFields(opts) });
  }

  /** Publishes the same data to several channels. */
  broadcast(channels: string[], data: unknown, opts: PublishOptions = {}): Promise<{ responses: unknown[] }> {
    return this.call('broadcast', { channels, data, ...publishFields(opts) });
  }

  /** Reads a channel's history. */
  history(
    channel: string,
    opts: { limit?: number; since?: { offset: number; epoch: string }; reverse?: boolean } = {},
  ): Promise<{ publications: Array<{ data: unknown; offset?: number }>; offset: number; epoch: string }> {
    return this.call('history', { channel, ...opts });
  }

  /** Removes a channel's history (its position stays). */
  historyRemove(channel: string): Promise<Record<string, never>> {
    return this.call('history_remove', { channel });
  }

  /** Active channels, optionally filtered by a glob pattern. */
  channels(pattern?: string): Promise<{ channels: Record<string, { num_clients: number }> }> {
    return this.call('channels', pattern ? { pattern } : {});
  }

  /** The clients subscribed to a channel of a namespace with presence, by client id. */
  presence(channel: string): Promise<{ presence: Record<string, PresentClient> }> {
    return this.call('presence', { channel });
  }

  /** How many clients, and how many distinct users, are subscribed to a channel of a namespace with presence. */
  presenceStats(channel: string): Promise<{ num_clients: number; num_users: number }> {
    return this.call('presence_stats', { channel });
  }

  /** Information about the nodes. */
  info(): Promise<{ nodes: Array<Record<string, unknown>> }> {
    return this.call('info');
  }

  /** Subscribes a user's connections to a channel. */
  subscribe(user: string, channel: string, opts: { client?: string; session?: string; data?: unknown; expire_at?: number } = {}): Promise<Record<string, never>> {
    return this.call('subscribe', { user, channel, ...opts });
  }

  /** Unsubscribes a user's connections from a channel. */
  unsubscribe(user: string, channel: string, opts: { client?: string; session?: string } = {}): Promise<Record<string, never>> {
    return this.call('unsubscribe', { user, channel, ...opts });
  }

  /** Disconnects a user's connections (default code 3503, no reconnect). */
  disconnect(
    user: string,
    opts: { client?: string; session?: string; whitelist?: string[]; disconnect?: { code: number; reason: string } } = {},
  ): Promise<Record<string, never>> {
    return this.call('disconnect', { user, ...opts });
  }

  /** Changes the expiry of a user's connections. */
  refresh(user: string, opts: { client?: string; session?: string; expired?: boolean; expire_at?: number } = {}): Promise<Record<string, never>> {
    return this.call('refresh', { user, ...opts });
  }
}

/** A client in a channel's presence: its user, client id, and the connection and channel info of its tokens. */
export interface PresentClient {
  readonly user: string;
  readonly client: string;
  readonly conn_info?: unknown;
  readonly chan_info?: unknown;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function publishFields(opts: PublishOptions): Record<string, unknown> {
  return { tags: opts.tags, skip_history: opts.skipHistory, idempotency_key: opts.idempotencyKey, delta: opts.delta, version: opts.version, version_epoch: opts.versionEpoch };
}
