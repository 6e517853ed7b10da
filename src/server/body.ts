// Reading a request body with a size limit, for every HTTP endpoint (server API, Webdis, demo).
import type { IncomingMessage } from 'node:http';

/**
 * The request body, or undefined when it is larger than `max` bytes. Reading stops at the limit
 * without destroying the socket, so the caller can still answer (413 with `Connection: close`).
 */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > max) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
