// Reading a request body with a size limit, for every HTTP endpoint (server API, Webdis, demo).
import type { IncomingMessage } from 'node:http';

/**
 * Reads the request body and calls `done` once: with the body, with undefined when it is larger
 * than `max` bytes, or with the stream's error. Reading stops at the limit without destroying the
 * socket, so the caller can still answer (413 with `Connection: close`). A callback, not a promise:
 * the server API reads thousands of bodies a second, and this path makes no promise, only its three
 * listeners.
 */
export function readBodyThen(req: IncomingMessage, max: number, done: (body: Buffer | undefined, err?: Error) => void): void {
  if (Number(req.headers['content-length'] ?? 0) > max) return done(undefined);
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let size = 0;
  let settled = false;
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > max) {
      req.off('data', onData);
      req.pause();
      settled = true;
      done(undefined);
      return;
    }
    if (first === undefined) first = chunk;
    else (more ??= [first]).push(chunk);
  };
  req.on('data', onData);
  req.on('end', () => {
    if (settled) return;
    settled = true;
    done(more ? Buffer.concat(more) : (first ?? EMPTY));
  });
  req.on('error', (err) => {
    if (settled) return;
    settled = true;
    done(undefined, err);
  });
}

const EMPTY = Buffer.alloc(0);

/** The request body, or undefined when it is larger than `max` bytes (see readBodyThen). */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => readBodyThen(req, max, (body, err) => (err ? reject(err) : resolve(body))));
}
