// This node's native sessions, by client id and by user, for the server API calls that act on
// connections (disconnect, subscribe, unsubscribe, refresh).

/** What the registry needs of a session. */
export interface RegisteredSession {
  readonly id: string;
  readonly user: string;
}

/** Sessions by client id and by user id; and the ones still opening, so a shutdown reaches every one. */
export class SessionRegistry<S extends RegisteredSession = RegisteredSession> {
  private readonly byClient = new Map<string, S>();
  private readonly byUser = new Map<string, Set<S>>();
  /** Sessions whose socket is open but whose client has not connected yet. */
  private readonly opening = new Set<S>();

  /** A session whose socket just opened (before its connect command). */
  open(session: S): void {
    this.opening.add(session);
  }

  /** A connected session (no longer opening). */
  add(session: S): void {
    this.opening.delete(session);
    this.byClient.set(session.id, session);
    let set = this.byUser.get(session.user);
    if (!set) this.byUser.set(session.user, (set = new Set()));
    set.add(session);
  }

  /** A session that ended, opening or connected. */
  remove(session: S): void {
    this.opening.delete(session);
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

  /** The connected sessions. */
  all(): IterableIterator<S> {
    return this.byClient.values();
  }

  /** Every session, connected or still opening, as a list safe to use while they close. */
  everySession(): S[] {
    return [...this.byClient.values(), ...this.opening];
  }
}
