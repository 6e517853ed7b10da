// Channel namespace options (`channel.without_namespace`, `channel.namespaces[]`), as Centrifugo
// names them; part of the one configuration schema (schema.ts).
import { z } from 'zod';
import { duration } from './duration.js';
import { regexProblem } from './regex.js';

/** A boolean key, false unless given. */
export const flag = (value = false) => z.boolean().default(value);

/** The name under which a namespace picks its section's own proxy (`channel.proxy.<kind>`). */
export const DEFAULT_PROXY_NAME = 'default';

/**
 * Centrifugo's publication_data_format: '' (any non-empty payload; in a namespace: the channel
 * section's), `json` (JSON text), `json_object` (a JSON object). Its `binary` is not offered: every
 * native client of Herald reads JSON.
 */
export const publicationDataFormat = z.enum(['', 'json', 'json_object']).default('');

/** A configured regular expression, in RE2's syntax as Centrifugo's (see regex.ts). */
export const linearRegex = () =>
  z
    .string()
    .default('')
    .superRefine((src, ctx) => {
      const problem = regexProblem(src);
      if (problem) ctx.addIssue({ code: 'custom', message: `must be a regular expression in RE2 syntax, as Go's (${problem})` });
    });

const namespaceOptionsBase = z.object({
  history_size: z.number().int().min(0).max(1_000_000).default(0),
  history_ttl: duration().prefault(0),
  // How long the stream's position lives (0: channel.history_meta_ttl, or engine.history_meta_ttl).
  history_meta_ttl: duration().prefault(0),
  force_recovery: flag(),
  allow_recovery: flag(),
  force_recovery_mode: z.enum(['stream', 'cache']).default('stream'),
  force_positioning: flag(),
  allow_positioning: flag(),
  allow_subscribe_for_client: flag(),
  allow_subscribe_for_anonymous: flag(),
  allow_publish_for_client: flag(),
  allow_publish_for_subscriber: flag(),
  allow_publish_for_anonymous: flag(),
  allow_history_for_client: flag(),
  allow_history_for_subscriber: flag(),
  allow_history_for_anonymous: flag(),
  presence: flag(),
  join_leave: flag(),
  force_push_join_leave: flag(),
  allow_presence_for_client: flag(),
  allow_presence_for_subscriber: flag(),
  allow_presence_for_anonymous: flag(),
  allow_user_limited_channels: flag(),
  // Channel names a client may use here: the part after the namespace must match (client commands only).
  channel_regex: linearRegex(),
  // What a publication's payload must be (checked at publish): '' the channel section's default.
  publication_data_format: publicationDataFormat,
  // Clients may send a tags filter with a subscribe (Centrifugo's publication filtering).
  allow_tags_filter: flag(),
  // Fossil delta compression: what subscribers may ask for, and whether every publication is sent as a delta.
  allowed_delta_types: z.array(z.enum(['fossil'])).default([]),
  delta_publish: flag(),
  // The subscribe and publish proxies (channel.proxy) decide for this namespace's channels.
  subscribe_proxy_enabled: flag(),
  publish_proxy_enabled: flag(),
  // Expiring subscriptions are refreshed by channel.proxy.sub_refresh.
  sub_refresh_proxy_enabled: flag(),
  // Which proxy: `default` (channel.proxy.<kind>) or the name of one in `proxies`.
  subscribe_proxy_name: z.string().default(DEFAULT_PROXY_NAME),
  publish_proxy_name: z.string().default(DEFAULT_PROXY_NAME),
  sub_refresh_proxy_name: z.string().default(DEFAULT_PROXY_NAME),
});

function checkNamespace(ns: z.output<typeof namespaceOptionsBase>, ctx: z.RefinementCtx): void {
  if (ns.history_size > 0 && ns.history_ttl <= 0) {
    ctx.addIssue({ code: 'custom', path: ['history_ttl'], message: 'must be set (e.g. "300s") when history_size > 0' });
  }
  if (ns.history_meta_ttl > 0 && ns.history_meta_ttl < ns.history_ttl) {
    ctx.addIssue({ code: 'custom', path: ['history_meta_ttl'], message: 'must be at least history_ttl (a position must outlive its publications)' });
  }
  if (ns.history_ttl > 0 && ns.history_size === 0) {
    ctx.addIssue({ code: 'custom', path: ['history_size'], message: 'must be > 0 when history_ttl is set' });
  }
  if ((ns.force_recovery || ns.allow_recovery) && ns.history_size === 0) {
    ctx.addIssue({ code: 'custom', path: ['history_size'], message: 'must be > 0 for recovery (force_recovery / allow_recovery)' });
  }
  if ((ns.force_positioning || ns.allow_positioning) && ns.history_size === 0) {
    ctx.addIssue({ code: 'custom', path: ['history_size'], message: 'must be > 0 for positioning (force_positioning / allow_positioning)' });
  }
}

/** Options of one channel namespace (and of channels without a namespace). */
export const namespaceOptionsSchema = namespaceOptionsBase.strict().superRefine(checkNamespace);

/** Options of one channel namespace, parsed (durations in milliseconds). */
export type NamespaceOptions = z.output<typeof namespaceOptionsSchema>;

/** One entry of `channel.namespaces`: its `name` and its options. */
export const namespaceSchema = namespaceOptionsBase
  .extend({ name: z.string().regex(/^[-a-zA-Z0-9_.]*$/, 'letters, digits, "-", "_" and "." only') })
  .strict()
  .superRefine(checkNamespace);
