// This node's native sessions, by user, for the server API calls that act on connections (disconnect,
// subscribe, unsubscribe, refresh: by user, optionally narrowed to one client id).

/** What the registry needs of a session. */
export interface RegisteredSession {
  readonly id: string;
  readonly user: string;
  /** HTTP streaming or SSE: the id its `/emulation` requests name it by. */
  readonly emulatedSession?: string | undefined;
}

/**
 * Connected sessions by user id (the server API finds them by user, then client id), and the ones
 * still opening, so a shutdown reaches every one.
 */
export class SessionRegistry<S extends RegisteredSession = RegisteredSession> {
  private readonly byUser = new Map<string, Set<S>>();
  private connected = 0;
  /** Sessions whose socket is open but whose client has not connected yet. */
  private readonly opening = new Set<S>();
  /** HTTP streaming and SSE sessions, by the id their `/emulation` requests carry. */
  private readonly emulated = new Map<string, S>();

  /** A session whose socket just opened (before its connect command). */
  open(session: S): void {
    this.opening.add(session);
    if (session.emulatedSession !== undefined) this.emulated.set(session.emulatedSession, session);
  }

  /** The HTTP streaming or SSE session an `/emulation` request names, while it lasts. */
  emulatedSession(id: string): S | undefined {
    return this.emulated.get(id);
  }

  /** A connected session (no longer opening). */
  add(session: S): void {
    this.opening.delete(session);
    let set = this.byUser.get(session.user);
    if (!set) this.byUser.set(session.user, (set = new Set()));
    if (set.has(session)) return;
    set.add(session);
    this.connected++;
  }

  /** A session that ended, opening or connected. */
  remove(session: S): void {
    this.opening.delete(session);
    if (session.emulatedSession !== undefined) this.emulated.delete(session.emulatedSession);
    const set = this.byUser.get(session.user);
    if (!set?.delete(session)) return;
    this.connected--;
    if (set.size === 0) this.byUser.delete(session.user);
  }

  /**
   * Sessions of a user, optionally narrowed to one client id and to one session id (as Centrifugo's
   * hub: only an HTTP streaming or SSE connection has a session id, so naming one leaves out every
   * WebSocket).
   */
  find(user: string, client?: string, session?: string): S[] {
    const set = this.byUser.get(user);
    if (!set) return [];
    const all = [...set];
    return all.filter((s) => (!client || s.id === client) && (!session || s.emulatedSession === session));
  }

  /** Number of connected sessions. */
  get size(): number {
    return this.connected;
  }

  /** Number of sessions, connected or still opening. */
  get total(): number {
    return this.connected + this.opening.size;
  }

  /** Number of connected sessions of `user`. */
  userConnections(user: string): number {
    return this.byUser.get(user)?.size ?? 0;
  }

  /** Number of distinct users (anonymous counts as one). */
  get users(): number {
    return this.byUser.size;
  }

  /** Every session, connected or still opening, as a list safe to use while they close. */
  everySession(): S[] {
    const out: S[] = [];
    for (const set of this.byUser.values()) for (const s of set) out.push(s);
    for (const s of this.opening) out.push(s);
    return out;
  }
}
