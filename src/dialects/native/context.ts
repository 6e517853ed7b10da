// What a native session needs from its node: config, engine, hub, channel rules, token verifiers
// the registry of this node's sessions and their presence.
import type { Logger } from 'pino';
import type { ChannelRules } from '../../auth/channels.js';
import type { TokenVerifier } from '../../auth/tokens.js';
import type { HeraldConfig } from '../../config/schema.js';
import type { Engine } from '../../engine/engine.js';
import type { Hub } from '../../hub/hub.js';
import type { ConnectionLimits } from './limits.js';
import type { SharedHistoryReads } from './history-reads.js';
import type { PresenceTracker } from './presence.js';
import type { SessionRegistry } from './registry.js';
import type { NativeSession } from './session.js';

/**
 * Why a subscription was told to resubscribe and recover (insufficient state): a gap or another epoch
 * in its stream, the periodic position check, channel_position_max_time_lag, or the engine losing
 * its delivery path for the channel.
 */
export type ResyncReason = 'gap' | 'position_check' | 'time_lag' | 'engine';

/** Shared services of the native dialect on one node (and its counters). */
export interface NativeContext {
  readonly config: HeraldConfig;
  readonly engine: Engine;
  readonly hub: Hub;
  readonly rules: ChannelRules;
  readonly connectionTokens: TokenVerifier;
  readonly subscriptionTokens: TokenVerifier;
  readonly registry: SessionRegistry<NativeSession>;
  /** This node's present clients (presence entries it keeps up to date). */
  readonly presence: PresenceTracker;
  /** History reads of subscriptions being set up, the same ones in one turn made once. */
  readonly historyReads: SharedHistoryReads;
  /** Connections this node takes, opens a second, and lets one user hold. */
  readonly limits: ConnectionLimits;
  readonly log: Logger;
  readonly version: string;
  /** This node's id (HTTP streaming and SSE clients send it back with their commands). */
  readonly nodeId: string;
  /** client.channel_position_max_time_lag (ms; 0: off), read on the fan-out path of positioned subscriptions. */
  readonly positionMaxTimeLag: number;
  /** Subscriptions told to resubscribe since start, by why (read by metrics). */
  readonly resyncs: Record<ResyncReason, number>;
}

/** The native dialect's wire format name in the hub. */
export const NATIVE_FORMAT = 'native';

/** The wire format of native subscriptions that negotiated delta compression (`data` as a string). */
export const NATIVE_DELTA_FORMAT = 'native-delta';
