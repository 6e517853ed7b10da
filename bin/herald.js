#!/usr/bin/env node
// The `herald` command: runs the compiled CLI (built by `npm ci` / `npm run build`).
import { main } from '../dist/src/cli.js';

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`herald: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
