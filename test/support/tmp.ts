/** Temporary directories for tests, removed when the test process exits (pass or fail). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const created: string[] = [];
process.on('exit', () => {
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `flowtel-${prefix}-`));
  created.push(dir);
  return dir;
}
