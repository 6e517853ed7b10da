// One Webdis WebSocket: commands run strictly in order (a reply never overtakes an earlier one),
// replies and pushes go out through a bounded outbox, one frame each. While the socket holds
// subscriptions only (P)(UN)SUBSCRIBE with arguments are accepted, as in Webdis. Malformed input gets
// an error frame and the socket stays usable.
import type { WebSocket } from 'ws';
import { Outbox } from '../../hub/outbox.js';
import { closeOrCut } from '../../server/bounded.js';
import { Inbound } from '../../server/inbound.js';
import type { Permissions } from './acl.js';
import { PUBSUB_VERBS, arityError, nameTooLong, namesReserved, runCommand, verbOf, type CommandContext, type Outcome } from './commands.js';
import { CommandSyntaxError, errorJson, parseJsonCommand, replyJson } from './json-codec.js';
import { PubSub, SubscribeFailedError, type PubSubContext, type WireMode } from './pubsub.js';
import { RespSyntaxError, encodeResp, parseCommands } from './resp.js';

/** The text frame Webdis sends for a command a subscribed socket may not run. */
export const NOT_ALLOWED_AFTER_SUBSCRIBE = 'Command not allowed after subscribe';
/** The text frame Webdis sends when Redis cannot be reached. */
export const SERVICE_UNAVAILABLE = 'Service Unavailable';

/** Close code for a client that does not read its frames fast enough. */
const SLOW_CLOSE = 1008;

/** What a session needs from the dialect. */
export interface SessionContext extends CommandContext, PubSubContext {}

/** A Webdis WebSocket connection. */
export class WebdisSession {
  private readonly outbox: Outbox;
  private readonly pubsub: PubSub;
  private chain: Promise<void> = Promise.resolve();
  /** Commands waiting for their turn: past a bound the socket is not read until they drain. */
  private readonly inbound: Inbound;
  private closed = false;

  constructor(
    private readonly ctx: SessionContext,
    private readonly ws: WebSocket,
    private readonly mode: WireMode,
    private readonly allowed: Permissions,
  ) {
    const overflow = () => this.end(SLOW_CLOSE, 'slow consumer: more than webdis.queue_max_size bytes waiting');
    this.outbox = new Outbox(ws, { maxBytes: ctx.queueMaxSize, separator: null, onOverflow: overflow });
    this.pubsub = new PubSub(ctx, mode, { write: (b) => this.write(b), overflow });
    this.inbound = new Inbound(ws);
    ws.on('message', (data: Buffer | Buffer[] | ArrayBuffer) => this.onFrame(toBuffer(data)));
    ws.on('close', () => this.onClose());
    ws.on('error', () => undefined); // ws closes the socket with the right code (1002, 1007, 1009…)
  }

  /** Closes the socket (server shutdown, slow client). */
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.outbox.kill();
    closeOrCut(this.ws, () => this.ws.close(code, reason));
    this.onClose();
  }

  private onFrame(frame: Buffer): void {
    if (this.closed) return;
    let commands: Buffer[][];
    try {
      commands = this.mode === 'json' ? [parseJsonCommand(frame.toString('utf8'))] : parseCommands(frame);
    } catch (err) {
      // Whatever a client sends, it gets an answer and the node keeps running.
      const known = err instanceof CommandSyntaxError || err instanceof RespSyntaxError;
      if (!known) this.ctx.log.warn({ err }, 'webdis frame not understood');
      const message = err instanceof RespSyntaxError ? `bad request: ${err.message}` : known ? (err as Error).message : 'bad request';
      // In line with the replies, so it answers the frame it is about.
      this.enqueue(async () => this.write(this.mode === 'json' ? errorJson(message, 400) : encodeResp({ type: 'error', text: `ERR ${message}` })));
      return;
    }
    for (const args of commands) this.enqueue(() => this.execute(args));
  }

  private enqueue(task: () => Promise<void>): void {
    this.inbound.add();
    this.chain = this.chain
      .then(() => (this.closed ? undefined : task()))
      .catch((err: unknown) => {
        this.ctx.log.error({ err }, 'webdis command failed');
        this.write(this.mode === 'json' ? errorJson('internal error', 500) : encodeResp({ type: 'error', text: 'ERR internal error' }));
      })
      .finally(() => this.inbound.done());
  }

  private async execute(args: Buffer[]): Promise<void> {
    const verb = verbOf(args);
    const spelled = args[0]!.toString('utf8');
    if (this.pubsub.count > 0 && !(PUBSUB_VERBS.has(verb) && args.length >= 2)) return this.write(NOT_ALLOWED_AFTER_SUBSCRIBE);
    if (!PUBSUB_VERBS.has(verb)) return this.answer(spelled, await runCommand(this.ctx, args, this.allowed));
    if (!this.allowed(verb) || namesReserved(this.ctx.reserved, verb, args)) return this.answer(spelled, { kind: 'forbidden' });
    const names = args.slice(1).map((a) => a.toString('utf8'));
    const pattern = verb.startsWith('P');
    if (verb.endsWith('UNSUBSCRIBE')) return this.pubsub.unsubscribe(spelled, pattern, names);
    if (names.length === 0) return this.answer(spelled, { kind: 'reply', value: arityError(verb) });
    const tooLong = nameTooLong(verb, args);
    if (tooLong) return this.answer(spelled, { kind: 'reply', value: tooLong });
    try {
      await this.pubsub.subscribe(spelled, pattern, names);
    } catch (err) {
      if (!(err instanceof SubscribeFailedError)) throw err;
      this.ctx.log.debug({ err: err.message }, 'webdis subscribe failed');
      this.write(SERVICE_UNAVAILABLE);
    }
  }

  private answer(verb: string, outcome: Outcome): void {
    switch (outcome.kind) {
      case 'reply':
        if (this.mode === 'raw') return this.write(outcome.raw ?? encodeResp(outcome.value));
        return this.write(replyJson(verb, outcome.value));
      case 'forbidden':
        return this.write(this.mode === 'json' ? errorJson('Forbidden', 403) : '-ERR Forbidden\r\n');
      case 'unavailable':
        return this.write(SERVICE_UNAVAILABLE);
    }
  }

  private write(frame: Buffer | string): void {
    if (!this.closed) this.outbox.push(typeof frame === 'string' ? Buffer.from(frame) : frame);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.outbox.kill();
    this.pubsub.close();
  }
}

function toBuffer(data: Buffer | Buffer[] | ArrayBuffer): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
