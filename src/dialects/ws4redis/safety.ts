// Which flags a connection may use (ws4redis' WS4REDIS_ALLOWED_CHANNELS): the requested flags narrowed
// by the config rule of its facility and by the identity hook's answer, or a refusal (403). Unlike
// ws4redis, nothing is open by default: subscribing to broadcast only, no publishing from browsers.
import type { Ws4RedisConfig, Ws4RedisFlag } from '../../config/schema.js';
import { compileGlob, type GlobMatcher } from '../../engine/glob.js';
import type { Ws4RedisIdentity } from './channels.js';

/** The outcome of the safety rules for one upgrade. */
export type SafetyOutcome =
  | { readonly allowed: true; readonly flags: readonly Ws4RedisFlag[] }
  | { readonly allowed: false; readonly reason: string };

interface Rule {
  readonly match: GlobMatcher | undefined;
  readonly allowed: ReadonlySet<string>;
  readonly refuseAnonymous: boolean;
}

/** The configured rules, compiled once. */
export class SafetyRules {
  private readonly rules: Rule[];
  private readonly fallback: Rule;

  constructor(config: Ws4RedisConfig) {
    this.rules = config.facilities.map((f) => ({
      match: compileGlob(f.facility),
      allowed: new Set(f.allowed_channels),
      refuseAnonymous: f.refuse_anonymous,
    }));
    this.fallback = { match: undefined, allowed: new Set(config.allowed_channels), refuseAnonymous: config.refuse_anonymous };
  }

  /**
   * Applies the facility's rule (the first `facilities` entry whose glob matches, else the top-level
   * one) and, when the hook answered a `channels` list, that list too. Flags keep the URL's order.
   */
  check(facility: string, requested: readonly Ws4RedisFlag[], identity: Ws4RedisIdentity, hookChannels?: readonly string[]): SafetyOutcome {
    const rule = this.rules.find((r) => r.match!.test(facility)) ?? this.fallback;
    if (rule.refuseAnonymous && !identity.user) return { allowed: false, reason: 'anonymous connections are refused on this facility' };
    const hook = hookChannels ? new Set(hookChannels) : undefined;
    return { allowed: true, flags: requested.filter((f) => rule.allowed.has(f) && (!hook || hook.has(f))) };
  }
}
