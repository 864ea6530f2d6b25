/**
 * Rewrites the generated part of docs/kernels.md from `flowtel doctor` run on
 * this machine's kernel and in a VM of each other kernel of the matrix:
 *
 *   node dist/test/kernels/kernel-table.js
 *
 * test/e2e/doctor.test.ts checks the doc against doctor on every kernel CI
 * runs; this is how the doc is brought up to date when that check fails.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { DoctorReport } from '../../src/doctor';
import { columnOf, KERNEL_DOC, readKernelDoc, renderKernelTable, seriesOf, withKernelTable, type KernelColumn } from '../support/kernel-table';
import { KERNEL_MATRIX } from './matrix';
import { runInVm } from './vm';

const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');

function parseReport(text: string, where: string): DoctorReport {
  try {
    return JSON.parse(text) as DoctorReport;
  } catch {
    throw new Error(`doctor on ${where} printed no JSON report:\n${text}`);
  }
}

async function main(): Promise<void> {
  const host = seriesOf();
  const columns: KernelColumn[] = [];
  for (const { series } of KERNEL_MATRIX) {
    if (series === host) {
      const run = spawnSync(process.execPath, [CLI, 'doctor', '-o', 'json'], { encoding: 'utf8' });
      columns.push(columnOf(series, parseReport(run.stdout, `this machine (${series})`)));
      continue;
    }
    const result = await runInVm({
      series,
      command: `node ${CLI} doctor -o json > "$FLOWTEL_VM_RESULTS/doctor.json"`,
      cwd: process.cwd(),
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
      timeoutMs: 10 * 60_000,
      onLine: (line) => process.stdout.write(`[${series}] ${line}\n`),
    });
    const file = result.files.get('doctor.json');
    if (!file) throw new Error(`doctor on ${series} wrote no report (VM exit ${result.exitCode}):\n${result.consoleLog.slice(-2000)}`);
    columns.push(columnOf(series, parseReport(file.toString(), series)));
  }
  fs.writeFileSync(KERNEL_DOC, withKernelTable(readKernelDoc(), renderKernelTable(columns)));
  process.stdout.write(`rewrote the kernel table of ${KERNEL_DOC}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
