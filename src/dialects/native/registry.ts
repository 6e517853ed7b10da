// This node's native sessions, by client id and by user, for the server API calls that act on
// connections (disconnect, subscribe, unsubscribe, refresh).

/** What the registry needs of a session. */
export interface RegisteredSession {
  readonly id: string;
  readonly user: string;
}

/** Sessions by client id and by user id. */
export class SessionRegistry<S extends RegisteredSession = RegisteredSession> {
  private readonly byClient = new Map<string, S>();
  private readonly byUser = new Map<string, Set<S>>();

  add(session: S): void {
    this.byClient.set(session.id, session);
    let set = this.byUser.get(session.user);
    if (!set) this.byUser.set(session.user, (set = new Set()));
    set.add(session);
  }

  remove(session: S): void {
    if (this.byClient.get(session.id) !== session) return;
    this.byClient.delete(session.id);
    const set = this.byUser.get(session.user);
    set?.delete(session);
    if (set && set.size === 0) this.byUser.delete(session.user);
  }

  /** Sessions of a user, optionally narrowed to one client id or session id. */
  find(user: string, client?: string): S[] {
    const set = this.byUser.get(user);
    if (!set) return [];
    const all = [...set];
    return client ? all.filter((s) => s.id === client) : all;
  }

  /** Number of connected sessions. */
  get size(): number {
    return this.byClient.size;
  }

  /** Number of distinct users (anonymous counts as one). */
  get users(): number {
    return this.byUser.size;
  }

  all(): IterableIterator<S> {
    return this.byClient.values();
  }
}
