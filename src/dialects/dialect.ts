// What a dialect plugs into a node: the wire formats its subscribers use, the upgrades and HTTP
// requests it answers on the main server, and a lifecycle (a dialect may run a listener of its own,
// like Webdis on port 7379). The native dialect is wired in herald.ts; the others register in
// dialects/index.ts.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { TokenVerifier } from '../auth/tokens.js';
import type { HeraldConfig } from '../config/schema.js';
import type { Engine } from '../engine/engine.js';
import type { Hub, PublicationEncoder } from '../hub/hub.js';

/** The node's services a dialect may use. */
export interface DialectServices {
  readonly config: HeraldConfig;
  readonly engine: Engine;
  readonly hub: Hub;
  readonly log: Logger;
  /** The node's main HTTP server. */
  readonly server: Server;
  /** Verifies tokens signed with the `client.token` keys (shared with the native dialect). */
  readonly tokens: TokenVerifier;
  /**
   * True when a raw channel name belongs to the engine (Herald's own names) or to a dialect of this
   * node (`ownsRawName`): a dialect whose clients name raw channels freely (Webdis) refuses them.
   */
  readonly reservedRawName: (name: string) => boolean;
}

/** A dialect on one node. */
export interface Dialect {
  /** A short name for logs. */
  readonly name: string;
  /** The wire formats this dialect's subscribers use, each with its publication encoder. */
  readonly formats?: Readonly<Record<string, PublicationEncoder>>;
  /** Takes a WebSocket upgrade on the main server when it is this dialect's; returns false otherwise. */
  handleUpgrade?(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean;
  /** Answers an HTTP request on the main server when it is this dialect's; resolves false otherwise. */
  handleRequest?(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /**
   * True for a raw channel name this dialect's clients own, with rules of their own on who may read
   * and write it (ws4redis: `[P:]broadcast:…`, `user:…`, `group:…`, `session:…`): other dialects'
   * clients may not publish or subscribe to it, nor receive it through a pattern.
   */
  ownsRawName?(name: string): boolean;
  /** Connections its limits refused since start, by limit (metrics). */
  refused?(): Readonly<Record<string, number>>;
  /** How many client connections the dialect holds now (metrics, the API's `info`). */
  connections?(): number;
  /** Starts what the dialect runs of its own (after the engine started). */
  start?(): Promise<void>;
  /** Closes the dialect's connections and listeners (before the engine closes). */
  close?(): Promise<void>;
}

/** Creates a dialect from the node's services, or returns undefined when the config leaves it off. */
export type DialectFactory = (services: DialectServices) => Dialect | undefined;
