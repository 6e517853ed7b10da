// The one answer to an upgrade request that is turned away, for every WebSocket path.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

function ignore(): void {}

/**
 * Answers an upgrade request with an HTTP error (the status's text as body unless one is given) and
 * closes the socket. A client that resets the connection meanwhile is ignored: an upgrade socket has
 * no error listener of Node's, so its error would otherwise end the process.
 */
export function refuseUpgrade(socket: Duplex, status: number, body = `${STATUS_CODES[status] ?? 'Error'}\n`): void {
  socket.on('error', ignore);
  if (socket.destroyed) return;
  // Closed once the answer is written, as ws closes a handshake it aborts: Node keeps a half-closed
  // upgrade socket open while the client keeps its side open, with no timeout, so refused clients
  // would hold descriptors (past client.connection_limit) and hold up the server's close.
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
