// Listening on a port, the same way for every listener of a node (the main server, Webdis's port).
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import { HeraldError } from '../errors.js';
import { watchOpenFiles } from './open-files.js';

// How many connections the kernel may hold, accepted by TCP but not yet by Herald, on a listening
// socket. Node asks for 511; when thousands of clients connect at once (a deploy, a network blip,
// a node restart) the queue fills, the kernel drops handshakes, and some clients wait for
// retransmissions or are reset. Herald asks for the most the kernel allows instead, as Go servers
// do: Linux caps the value at net.core.somaxconn (4096 by default since Linux 5.4), which is the
// knob to raise for larger storms.
const LISTEN_BACKLOG = 65535;

/**
 * The URL a node listening on `address` answers at: an IPv6 address in brackets, and an address that
 * means every interface as `any` (a name to print, or the loopback address to call).
 */
export function listeningUrl(address: string, port: number, any = 'localhost'): string {
  const host = address === '0.0.0.0' || address === '::' ? any : address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Listens on `host:port` (port 0: a free one) with the deepest accept queue the kernel allows, warning
 * on `log` as its connections near the open-file limit (open-files.ts). A failure is
 * HERALD_ERR_LISTEN, its message prefixed by `label` when given (e.g. `webdis`).
 */
export function listen(server: Server, port: number, host: string, log: Logger, label = ''): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) =>
      reject(new HeraldError('HERALD_ERR_LISTEN', `${label ? `${label}: ` : ''}cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', onError);
      watchOpenFiles(server, log);
      resolve();
    });
  });
}
