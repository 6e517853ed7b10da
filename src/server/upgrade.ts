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
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
