// Files a test writes for a node to read (configurations), in folders of their own under the system's
// temporary folder, removed when the test process exits.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const folders: string[] = [];
process.once('exit', () => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** Writes `content` to a new file named `name` in a folder of its own; returns its path. */
export function tempFile(name: string, content: string): string {
  const folder = mkdtempSync(join(tmpdir(), 'herald-test-'));
  folders.push(folder);
  const file = join(folder, name);
  writeFileSync(file, content);
  return file;
}
