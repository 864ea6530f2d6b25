/**
 * Runs every compiled *.test.js under dist/test with mocha's spec reporter and
 * ends with the line CI reads: "N passed, N failed" (mocha itself says
 * "passing"/"failing"). Pass file filters as arguments to run a subset.
 */
import fs from 'node:fs';
import path from 'node:path';
import Mocha from 'mocha';
import { TestNode } from '../../src/testbed/test-node';
import { cgroupRoot } from './kernel';

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(full));
    else if (entry.name.endsWith('.test.js')) out.push(full);
  }
  return out.sort();
}

const root = path.resolve(__dirname, '..');
const filters = process.argv.slice(2);
const mocha = new Mocha({ reporter: 'spec', timeout: 60_000, color: false });
for (const file of testFiles(root)) {
  if (filters.length === 0 || filters.some((f) => file.includes(f))) mocha.addFile(file);
}

async function sweepLeftovers(): Promise<void> {
  // Namespaces and cgroups of an earlier run that was killed (owner pid gone).
  if (process.getuid?.() !== 0) return;
  const removed = await TestNode.sweepStale(cgroupRoot());
  if (removed.length) process.stdout.write(`removed leftovers of earlier runs: ${removed.join(', ')}\n`);
}

let passed = 0;
let failed = 0;
let skipped = 0;
sweepLeftovers().then(run, (err: Error) => {
  process.stdout.write(`cannot remove leftovers of earlier runs: ${err.message}\n0 passed, 1 failed\n`, () => process.exit(1));
});

function run(): void {
  const runner = mocha.run(() => {
    const skippedText = skipped ? `, ${skipped} skipped` : '';
    // Exit explicitly: a child process a failed test left behind must not hang CI.
    process.stdout.write(`\n${passed} passed, ${failed} failed${skippedText}\n`, () => process.exit(failed > 0 || passed === 0 ? 1 : 0));
  });
  runner.on('pass', () => passed++);
  runner.on('fail', () => failed++);
  runner.on('pending', () => skipped++);
}
