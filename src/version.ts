// The package version, read once from package.json (reported in connect replies and `info`).
import { readFileSync } from 'node:fs';

/** Herald's version. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
