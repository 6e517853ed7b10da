// Waits that end: work given at most so long, and a close a client must answer within so long.

/** Resolves when `work` settles, or after `ms`, whichever comes first (never rejects). */
export function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((r) => (timer = setTimeout(r, ms)));
  return Promise.race([work.then(noop, noop), limit]).finally(() => clearTimeout(timer));
}

/** How long a client may take to answer the server's close before its socket is cut off. */
export const CLOSE_ANSWER_MS = 5_000;

/**
 * Closes a socket with `sendClose` (the close frame), cutting it off at once when that throws, and
 * in any case after CLOSE_ANSWER_MS if the client has not answered: a client that stopped reading
 * would otherwise hold its socket (and its place under a connection limit) for ws's 30 s or more.
 */
export function closeOrCut(socket: { terminate(): void }, sendClose: () => void): void {
  try {
    sendClose();
  } catch {
    socket.terminate();
  }
  setTimeout(() => socket.terminate(), CLOSE_ANSWER_MS).unref();
}

function noop(): void {}
