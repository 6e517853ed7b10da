// The process's open-file limit, and a warning as a node's connections near it. Each connection is a
// file descriptor. Past the limit the kernel refuses to accept, and libuv, so that a listener does not
// spin on a connection it cannot take, accepts and closes the waiting connections without telling
// Node: clients are cut off and nothing would be logged. So a node logs the limit when it starts,
// and warns, at most every 10 s, while its listeners' connections leave less than a tenth of it (at
// least 64 descriptors) for everything else: the process's own files, pipes and Redis connections.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import type { Logger } from 'pino';

/** What a node keeps of the limit for descriptors other than its clients' connections. */
const headroom = (limit: number): number => Math.max(Math.floor(limit / 10), 64);
/** At most one warning this often (the limit is the process's, however many nodes it runs). */
const WARN_EVERY_MS = 10_000;

/** The open-file limit in force (Linux: /proc/self/limits; Node raises it to the hard limit at start); undefined where unknown or unlimited. */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Listening servers, with the log each one's warnings go to. */
const watched = new Map<Server, Logger>();
/** The limit, read at the first watch (null: not read yet). */
let limit: number | undefined | null = null;
let lastWarning = 0;

/** Warns on `log` while the connections of the servers watched come within the headroom of the open-file limit. */
export function watchOpenFiles(server: Server, log: Logger): void {
  if (limit === null) limit = openFileLimit();
  if (limit === undefined || watched.has(server)) return;
  watched.set(server, log);
  server.on('connection', onConnection);
  server.once('close', () => {
    watched.delete(server);
    server.off('connection', onConnection);
  });
}

function onConnection(this: Server): void {
  // `_connections`: the sockets a server accepted and has not seen closed (what getConnections counts).
  let open = 0;
  for (const server of watched.keys()) open += (server as unknown as { _connections?: number })._connections ?? 0;
  if (open < limit! - headroom(limit!)) return;
  const now = Date.now();
  if (now - lastWarning < WARN_EVERY_MS) return;
  lastWarning = now;
  watched
    .get(this)
    ?.warn(
      { connections: open, open_file_limit: limit },
      'connections near the open-file limit: past it, new connections are closed unanswered; raise the limit (ulimit -n, LimitNOFILE=, --ulimit nofile=)',
    );
}
