// Channel names and permissions: which namespace a channel is in, and whether a connection may
// subscribe, publish, read history or presence there. Nothing is allowed that the config did not allow.
import { linearRegExp, type LinearRegExp } from '../config/regex.js';
import type { HeraldConfig, NamespaceOptions } from '../config/schema.js';

/**
 * Resolves channel names to namespace options. How a name is read is configurable, as in
 * Centrifugo (`channel.private_prefix` `$`, `namespace_boundary` `:`, `user_boundary` `#`,
 * `user_separator` `,`; each off when empty).
 */
export class ChannelRules {
  private readonly privatePrefix: string;
  private readonly namespaceBoundary: string;
  private readonly userBoundary: string;
  private readonly userSeparator: string;
  private readonly namespaces = new Map<string, NamespaceOptions>();
  private readonly defaultOptions: NamespaceOptions;
  /** Each namespace's compiled `channel_regex` (namespaces without one are not listed). */
  private readonly nameRules = new Map<NamespaceOptions, LinearRegExp>();
  /** Each namespace's publication_data_format, the channel section's where it says '' (none: not listed). */
  private readonly dataFormats = new Map<NamespaceOptions, 'json' | 'json_object'>();

  /**
   * `maxLength`: the longest channel name in bytes (client.channel_max_length, or channel.max_length
   * when given); a longer one is not subscribed to, and never matches a `channel_regex`, so no client
   * makes a match scan more than that.
   */
  constructor(
    config: HeraldConfig['channel'],
    private readonly maxLength = Infinity,
  ) {
    this.privatePrefix = config.private_prefix;
    this.namespaceBoundary = config.namespace_boundary;
    this.userBoundary = config.user_boundary;
    this.userSeparator = config.user_separator;
    this.defaultOptions = config.without_namespace;
    for (const ns of config.namespaces) {
      const { name, ...options } = ns;
      if (name === '') this.defaultOptions = options;
      else this.namespaces.set(name, options);
    }
    for (const options of [this.defaultOptions, ...this.namespaces.values()]) {
      if (options.channel_regex) this.nameRules.set(options, linearRegExp(options.channel_regex));
      const format = options.publication_data_format || config.publication_data_format;
      if (format) this.dataFormats.set(options, format);
    }
  }

  /** What a publication's payload must be in this namespace: `json`, `json_object`, or undefined (anything). */
  dataFormat(options: NamespaceOptions): 'json' | 'json_object' | undefined {
    return this.dataFormats.get(options);
  }

  /**
   * True when the channel's name is one its namespace's `channel_regex` allows (always, without one).
   * As Centrifugo matches it: the part after the namespace (the private prefix left out), or the
   * whole name for a channel without a namespace; unanchored unless the expression says `^…$`.
   */
  nameAllowed(channel: string, options: NamespaceOptions): boolean {
    const rule = this.nameRules.get(options);
    if (!rule) return true;
    if (this.tooLong(channel)) return false;
    return rule.test(this.split(channel).rest);
  }

  /** True for a name longer than the channel max length, in bytes (as Centrifugo counts: Go's len). */
  tooLong(channel: string): boolean {
    return Buffer.byteLength(channel) > this.maxLength;
  }

  /** A channel's namespace ('' for none) and what follows it (the whole name without a namespace), as Centrifugo reads them. */
  private split(channel: string): { namespace: string; rest: string } {
    const name = this.isPrivate(channel) ? channel.slice(this.privatePrefix.length) : channel;
    const i = this.namespaceBoundary ? name.indexOf(this.namespaceBoundary) : -1;
    return i < 0 ? { namespace: '', rest: channel } : { namespace: name.slice(0, i), rest: name.slice(i + this.namespaceBoundary.length) };
  }

  /** The namespace name of a channel ('' for none). */
  namespaceOf(channel: string): string {
    return this.split(channel).namespace;
  }

  /** The options of a channel's namespace, or undefined when the namespace is not configured. */
  options(channel: string): NamespaceOptions | undefined {
    // NUL marks the engine's raw and pattern channels (Webdis, ws4redis): never a native channel.
    if (channel.includes('\u0000')) return undefined;
    const ns = this.namespaceOf(channel);
    return ns === '' ? this.defaultOptions : this.namespaces.get(ns);
  }

  /** True for channels that need a token whatever the namespace says. */
  isPrivate(channel: string): boolean {
    return this.privatePrefix !== '' && channel.startsWith(this.privatePrefix);
  }

  /** True for a user-limited channel (`dialog#alice,bob` in a namespace with allow_user_limited_channels). */
  isUserLimited(channel: string, options: NamespaceOptions): boolean {
    return options.allow_user_limited_channels && this.userBoundary !== '' && channel.includes(this.userBoundary);
  }

  /** True when the channel is user-limited and names this user among its users. */
  userAllowed(channel: string, user: string, options: NamespaceOptions): boolean {
    if (!this.isUserLimited(channel, options) || user === '') return false;
    const users = channel.slice(channel.lastIndexOf(this.userBoundary) + this.userBoundary.length);
    return this.userSeparator === '' ? users === user : users.split(this.userSeparator).includes(user);
  }

  /**
   * The personal channel of a user (Centrifugo's `subscribe_to_user_personal_channel`): `#<user>`, or
   * `<namespace>:#<user>` when the config names a namespace for it.
   */
  personalChannel(config: HeraldConfig['client']['subscribe_to_user_personal_channel'], user: string): string {
    const ns = config.personal_channel_namespace;
    return `${ns ? ns + this.namespaceBoundary : ''}${this.userBoundary}${user}`;
  }
}

// Each check ends, as in Centrifugo, with the client.insecure mode (`insecure`): for development,
// it allows what the namespace's options do not.

/** May a connection subscribe without a token? */
export function canSubscribe(o: NamespaceOptions, user: string, insecure = false): boolean {
  return (o.allow_subscribe_for_client && (user !== '' || o.allow_subscribe_for_anonymous)) || insecure;
}

/** May a connection publish from the client? */
export function canPublish(o: NamespaceOptions, user: string, subscribed: boolean, insecure = false): boolean {
  const anonymousOk = user !== '' || o.allow_publish_for_anonymous;
  return (anonymousOk && (o.allow_publish_for_client || (o.allow_publish_for_subscriber && subscribed))) || insecure;
}

/** May a connection read history from the client? */
export function canReadHistory(o: NamespaceOptions, user: string, subscribed: boolean, insecure = false): boolean {
  const anonymousOk = user !== '' || o.allow_history_for_anonymous;
  return (anonymousOk && (o.allow_history_for_client || (o.allow_history_for_subscriber && subscribed))) || insecure;
}

/** May a connection read presence (and, for join/leave, be sent joins and leaves) from the client? */
export function canReadPresence(o: NamespaceOptions, user: string, subscribed: boolean, insecure = false): boolean {
  const anonymousOk = user !== '' || o.allow_presence_for_anonymous;
  return (anonymousOk && (o.allow_presence_for_client || (o.allow_presence_for_subscriber && subscribed))) || insecure;
}
