// Folders and files a test makes (configurations for a node, a redis-server's working folder) under
// the system's temporary folder, removed when the test process exits if not before.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const folders: string[] = [];
process.once('exit', () => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** A new empty folder, its name starting with `prefix`. */
export function tempFolder(prefix = 'herald-test-'): string {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  folders.push(folder);
  return folder;
}

/** Writes `content` to a new file named `name` in a folder of its own; returns its path. */
export function tempFile(name: string, content: string): string {
  const file = join(tempFolder(), name);
  writeFileSync(file, content);
  return file;
}
