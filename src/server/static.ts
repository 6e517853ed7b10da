// Serves the demo pages from `public/` and the centrifuge-js browser build from the installed package
// (no CDN), with safe path handling.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.map': 'application/json',
};

/** The folder holding the demo pages (`public/` at the package root). */
export const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'public');

/** The centrifuge-js browser bundle shipped inside the `centrifuge` npm package. */
export const CENTRIFUGE_BUNDLE = join(
  dirname(createRequire(import.meta.url).resolve('centrifuge')),
  '..',
  'dist',
  'centrifuge.js',
);

/** Serves GET/HEAD for a static file; returns false when the path is not one. */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  let file: string;
  if (pathname === '/vendor/centrifuge.js') file = CENTRIFUGE_BUNDLE;
  else {
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname === '/' ? '/index.html' : pathname);
    } catch {
      return false; // not a valid percent-encoding: no such file
    }
    const rel = normalize(decoded);
    file = join(PUBLIC_DIR, rel);
    if (!file.startsWith(PUBLIC_DIR + sep)) return false;
  }
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    return false;
  }
  const ext = file.slice(file.lastIndexOf('.'));
  res.writeHead(200, {
    'Content-Type': TYPES[ext] ?? 'application/octet-stream',
    'Content-Length': body.length,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
