/**
 * Runs every compiled *.test.js under dist/test with mocha's spec reporter,
 * then the kernel-facing tests (test/e2e, test/kernel) again in a VM of each
 * other kernel of the CI matrix (test/kernels/), and ends with the line CI
 * reads: "N passed, N failed" over all of them (mocha itself says
 * "passing"/"failing").
 *
 *   node dist/test/support/run-tests.js [FILTER...]
 *
 * Filters (parts of test file paths; !FILTER leaves files out) run a subset, on this machine only unless
 * FLOWTEL_KERNELS names kernels. FLOWTEL_KERNELS=5.10,6.1 picks the VMs;
 * FLOWTEL_KERNELS= (empty) runs none. Inside a VM (FLOWTEL_VM set) only this
 * kernel's run happens.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Mocha from 'mocha';
import { TestNode } from '../../src/testbed/test-node';
import { VM_KERNELS } from '../kernels/matrix';
import { cgroupRoot } from './kernel';

/**
 * The kernel-facing tests: what runs again on every kernel of the matrix. The Kubernetes e2e test is not among
 * them: it tests the agent against the API server (outages, 410s, relists), the same on every kernel, with
 * timings an emulated CPU stretches; its kernel side, attribution by cgroup, is in every other e2e test.
 */
const KERNEL_FACING = ['e2e/', 'kernel/'];
const NOT_KERNEL_FACING = ['!e2e/kubernetes'];
/** A VM that has not finished its tests by then is stopped (a warm run takes about 8 minutes per kernel). */
const VM_TIMEOUT_MS = 25 * 60_000;

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(full));
    else if (entry.name.endsWith('.test.js')) out.push(full);
  }
  return out.sort();
}

interface Outcome {
  where: string;
  passed: number;
  failed: number;
  skipped: number;
  seconds: number;
  /** Why a kernel's tests ran twice, when they did. */
  rerun?: string;
  /** One line per failed test: its full title and the first line of its error. */
  failures: string[];
}

/** Marks a failure line in a guest's summary, so the host can repeat it in its own. */
const FAILURE_PREFIX = 'failed: ';

function failureLine(title: string, err: Error | undefined): string {
  const first = (err?.message ?? String(err)).split('\n')[0].slice(0, 300);
  return `${title} -- ${first}`;
}

async function sweepLeftovers(): Promise<void> {
  // Namespaces and cgroups of an earlier run that was killed (owner pid gone).
  if (process.getuid?.() !== 0) return;
  const removed = await TestNode.sweepStale(cgroupRoot());
  if (removed.length) process.stdout.write(`removed leftovers of earlier runs: ${removed.join(', ')}\n`);
}

function runMocha(filters: string[]): Promise<Outcome> {
  const started = Date.now();
  const root = path.resolve(__dirname, '..');
  const mocha = new Mocha({ reporter: 'spec', timeout: 60_000, color: false });
  const included = filters.filter((f) => !f.startsWith('!'));
  const excluded = filters.filter((f) => f.startsWith('!')).map((f) => f.slice(1));
  for (const file of testFiles(root)) {
    if (excluded.some((f) => file.includes(f))) continue;
    if (included.length === 0 || included.some((f) => file.includes(f))) mocha.addFile(file);
  }
  const outcome: Outcome = { where: `${os.release()} (this machine)`, passed: 0, failed: 0, skipped: 0, seconds: 0, failures: [] };
  return new Promise((resolve) => {
    const runner = mocha.run(() => resolve({ ...outcome, seconds: (Date.now() - started) / 1000 }));
    runner.on('pass', () => outcome.passed++);
    runner.on('fail', (test: Mocha.Runnable, err: Error) => {
      outcome.failed++;
      outcome.failures.push(failureLine(test.fullTitle(), err));
    });
    runner.on('pending', () => outcome.skipped++);
  });
}

/** The kernel-facing tests of `filters` (all of them when none) in a VM of `series`; a VM that ends without a summary line counts as one failure. */
async function runInKernel(series: string, filters: string[]): Promise<Outcome> {
  // Loaded only when VMs run: inside a VM this file must not need qemu's side.
  /* eslint-disable-next-line @typescript-eslint/no-require-imports */
  const { runInVm } = require('../kernels/vm') as typeof import('../kernels/vm');
  const subset = filters.length ? filters.filter((f) => KERNEL_FACING.some((k) => f.startsWith(k) || f.includes(`/${k}`))) : KERNEL_FACING;
  const outcome: Outcome = { where: series, passed: 0, failed: 0, skipped: 0, seconds: 0, failures: [] };
  if (subset.length === 0) return outcome;
  process.stdout.write(`\n== kernel ${series}: ${subset.join(' ')} in a VM\n`);
  const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', CI: process.env.CI ?? 'false' };
  for (const [key, value] of Object.entries(process.env)) if (key.startsWith('FLOWTEL_') && key !== 'FLOWTEL_KERNELS' && value !== undefined) env[key] = value;
  const attempt = async () => {
    let summary: RegExpExecArray | null = null;
    let skippedLine: RegExpExecArray | null = null;
    const result = await runInVm({
      series,
      command: `node --no-warnings ${path.join(__dirname, 'run-tests.js')} ${[...subset, ...NOT_KERNEL_FACING].map((f) => `'${f}'`).join(' ')}`,
      cwd: path.resolve(__dirname, '..', '..', '..'),
      env,
      timeoutMs: VM_TIMEOUT_MS,
      onLine: (line) => {
        summary = /^(\d+) passed, (\d+) failed$/.exec(line) ?? summary;
        skippedLine = /^(\d+) skipped$/.exec(line) ?? skippedLine;
        if (line.startsWith(FAILURE_PREFIX)) outcome.failures.push(line.slice(FAILURE_PREFIX.length));
        process.stdout.write(`[${series}] ${line}\n`);
      },
    });
    return { result, summary: summary as RegExpExecArray | null, skippedLine: skippedLine as RegExpExecArray | null };
  };
  let { result, summary, skippedLine } = await attempt();
  // The test process itself killed by a signal, with no result: under qemu's emulation this has happened once
  // in many runs (a SIGSEGV of node, not reproduced since). The guest printed the kernel's record
  // of it above, for a report; the kernel's tests run once more, and the summary says so.
  if (!summary && result.exitCode !== null && result.exitCode >= 128 && !result.timedOut) {
    const signal = result.exitCode - 128;
    process.stdout.write(`[${series}] the test process died of signal ${signal} without a result; running this kernel's tests once more\n`);
    outcome.rerun = `rerun after the test process died of signal ${signal}`;
    outcome.seconds += result.durationMs / 1000;
    outcome.failures = [];
    ({ result, summary, skippedLine } = await attempt());
  }
  outcome.where = `${result.release} (VM)`;
  outcome.seconds += result.durationMs / 1000;
  if (summary) {
    outcome.passed = Number(summary[1]);
    outcome.failed = Number(summary[2]);
  }
  if (skippedLine) outcome.skipped = Number(skippedLine[1]);
  // A guest that ran nothing, or failed without a failed test (a crash after its summary), fails the kernel.
  if (!summary || outcome.passed === 0 || (result.exitCode !== 0 && outcome.failed === 0)) {
    outcome.failed = Math.max(1, outcome.failed);
    const why = result.timedOut
      ? `timed out after ${VM_TIMEOUT_MS / 60_000} min`
      : !summary
        ? `ended without a result (exit ${result.exitCode})`
        : `exited ${result.exitCode} after ${outcome.passed} passed, ${outcome.failed} failed`;
    process.stdout.write(`[${series}] the VM ${why}; the guest kernel's console ends with:\n${result.consoleLog.split('\n').slice(-40).join('\n')}\n`);
  }
  return outcome;
}

function kernels(filters: string[]): string[] {
  if (process.env.FLOWTEL_VM) return [];
  const chosen = process.env.FLOWTEL_KERNELS;
  if (chosen === undefined) return filters.length ? [] : [...VM_KERNELS];
  return chosen
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  await sweepLeftovers();
  const outcomes = [await runMocha(filters)];
  for (const series of kernels(filters)) outcomes.push(await runInKernel(series, filters));
  const passed = outcomes.reduce((s, o) => s + o.passed, 0);
  const failed = outcomes.reduce((s, o) => s + o.failed, 0);
  const skipped = outcomes.reduce((s, o) => s + o.skipped, 0);
  const lines = [''];
  // Repeated at the end so that a log cut to its last lines still says which tests failed.
  const single = outcomes.length === 1;
  for (const o of outcomes) for (const f of o.failures) lines.push(single ? `${FAILURE_PREFIX}${f}` : `${FAILURE_PREFIX}[${o.where}] ${f}`);
  if (lines.length > 1) lines.push('');
  if (outcomes.length > 1) {
    lines.push('kernels:');
    for (const o of outcomes)
      lines.push(`  ${o.where.padEnd(40)} ${o.passed} passed, ${o.failed} failed (${Math.round(o.seconds)} s${o.rerun ? `; ${o.rerun}` : ''})`);
    lines.push('');
  }
  if (skipped) lines.push(`${skipped} skipped`);
  lines.push(`${passed} passed, ${failed} failed`);
  await new Promise<void>((resolve) => process.stdout.write(`${lines.join('\n')}\n`, () => resolve()));
  return failed > 0 || passed === 0 ? 1 : 0;
}

// Exit explicitly: a child process a failed test left behind must not hang CI.
main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stdout.write(`${err.stack ?? err.message}\n0 passed, 1 failed\n`, () => process.exit(1));
  },
);
