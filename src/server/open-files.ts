// The process's open-file limit, and a warning as a node's connections near it. Each connection is a
// file descriptor. Past the limit the kernel refuses to accept, and libuv, so that a listener does not
// spin on a connection it cannot take, accepts and closes the waiting connections without telling
// Node: clients are cut off and nothing would be logged. So a node logs the limit when it starts,
// and warns, at most every 10 s for each listener, while its listeners' connections leave less than
// a tenth of it (at least 64 descriptors) for everything else: the process's own files, pipes and
// Redis connections.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import { throttledWarn } from '../engine/log-throttle.js';

/** At most one warning this often per listener. */
const WARN_EVERY_MS = 10_000;

/** The limit as read once (null: not read yet). */
let limit: number | undefined | null = null;
/** Connections at which a node warns: the limit less a tenth of it, and at least 64, for its other descriptors. */
let warnAt = Infinity;

/**
 * The open-file limit in force (Linux: /proc/self/limits, read once; Node raises the limit to the
 * hard limit at start); undefined where unknown or unlimited.
 */
export function openFileLimit(): number | undefined {
  if (limit !== null) return limit;
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    limit = m ? Number(m[1]) : undefined;
  } catch {
    limit = undefined;
  }
  if (limit !== undefined) warnAt = limit - Math.max(Math.floor(limit / 10), 64);
  return limit;
}

/** Listening servers, with the warning each one's log is given. */
const watched = new Map<Server, ReturnType<typeof throttledWarn>>();

/** Warns on `log` while the connections of the servers watched come within the headroom of the open-file limit. */
export function watchOpenFiles(server: Server, log: Logger): void {
  if (openFileLimit() === undefined || watched.has(server)) return;
  watched.set(server, throttledWarn(log, WARN_EVERY_MS));
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
  if (open < warnAt) return;
  watched.get(this)?.(
    'open files',
    { connections: open, open_file_limit: limit },
    'connections near the open-file limit: past it, new connections are closed unanswered; raise the limit (ulimit -n, LimitNOFILE=, --ulimit nofile=)',
  );
}
