// The `channels` API method over every node (Centrifugo's survey): the node that got the call asks
// every live node, through the engine's control messages, for its channels matching the pattern,
// and adds up what they answer. A node that does not answer within SURVEY_TIMEOUT_MS (one that
// died since it last announced itself, or an earlier build, which does not know the question) is
// left out: the call answers what came, and says so in the log.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { channelKind, type Engine } from '../engine/engine.js';
import { compileChannelPattern } from './channel-pattern.js';
import type { Hub } from '../hub/hub.js';
import { within } from '../server/bounded.js';

/** How long a survey waits for the other nodes. */
export const SURVEY_TIMEOUT_MS = 2_000;

/** The control messages of a survey (sent as `{method, params}`, see control.ts). */
export const SURVEY_ASK = 'channels_survey';
export const SURVEY_ANSWER = 'channels_answer';

type Counts = Map<string, number>;

interface Survey {
  readonly waiting: Set<string>;
  readonly counts: Counts;
  readonly done: () => void;
}

/** This node's side of channel surveys: the ones it asked, and the answers to others'. */
export class ChannelSurveys {
  private readonly open = new Map<string, Survey>();

  constructor(
    private readonly engine: Engine,
    private readonly hub: Hub,
    private readonly nodeId: string,
    private readonly send: (method: string, params: Record<string, unknown>, node?: string) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** Native channels with subscribers on any live node matching `pattern` (all when ''), with their counts. */
  async channels(pattern: string): Promise<Counts> {
    const counts = this.local(pattern);
    const others = (await this.engine.nodes()).map((n) => n.uid).filter((uid) => uid !== this.nodeId);
    if (others.length === 0) return counts;
    const id = randomUUID();
    const answered = new Promise<void>((resolve) => this.open.set(id, { waiting: new Set(others), counts, done: resolve }));
    try {
      await this.send(SURVEY_ASK, { id, from: this.nodeId, pattern });
      await within(answered, SURVEY_TIMEOUT_MS);
    } finally {
      const survey = this.open.get(id);
      this.open.delete(id);
      if (survey && survey.waiting.size > 0) {
        this.log.warn({ nodes: [...survey.waiting] }, `channels: ${survey.waiting.size} node(s) did not answer within ${SURVEY_TIMEOUT_MS} ms; their channels are left out`);
      }
    }
    return counts;
  }

  /** Another node's question: this node's channels go back to it alone. */
  ask(params: Record<string, unknown>): void {
    const { id, from, pattern } = params;
    if (typeof id !== 'string' || typeof from !== 'string' || from === this.nodeId) return;
    let channels: Record<string, number>;
    try {
      channels = Object.fromEntries(this.local(typeof pattern === 'string' ? pattern : ''));
    } catch (err) {
      // A pattern this node cannot read (the asking node checked it: another build, or a hand-written message).
      this.log.warn({ err: (err as Error).message, from }, 'a channels survey this node cannot answer');
      return;
    }
    this.send(SURVEY_ANSWER, { id, node: this.nodeId, channels }, from).catch((err: unknown) =>
      this.log.warn({ err: (err as Error).message }, 'could not answer a channels survey'),
    );
  }

  /** A node's answer to a survey this node asked. */
  answer(params: Record<string, unknown>): void {
    const { id, node, channels } = params;
    const survey = typeof id === 'string' ? this.open.get(id) : undefined;
    if (!survey || typeof node !== 'string' || !survey.waiting.delete(node)) return;
    if (typeof channels === 'object' && channels !== null) {
      for (const [name, n] of Object.entries(channels)) {
        if (typeof n === 'number') survey.counts.set(name, (survey.counts.get(name) ?? 0) + n);
      }
    }
    if (survey.waiting.size === 0) survey.done();
  }

  /** This node's native channels matching `pattern`, with their subscriber counts. */
  private local(pattern: string): Counts {
    const match = pattern ? compileChannelPattern(pattern) : null;
    const counts: Counts = new Map();
    for (const [name, count] of this.hub.channelCounts()) {
      // Native channels only: the Webdis and ws4redis dialects' raw channels are not Herald channels.
      if (channelKind(name).kind !== 'native') continue;
      if (!match || match.test(name)) counts.set(name, count);
    }
    return counts;
  }
}
