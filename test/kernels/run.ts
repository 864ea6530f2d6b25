/**
 * Runs a command in a VM of each named kernel, one after another, with the
 * output streamed line by line under the kernel's name:
 *
 *   node dist/test/kernels/run.js --kernels 6.1,6.12 -- node dist/test/support/run-tests.js e2e/
 *
 * The command runs in this directory, as root, with CI and FLOWTEL_* variables
 * passed on. Exit code: 0 when the command succeeded on every kernel.
 */
import { VM_KERNELS } from './matrix';
import { runInVm } from './vm';

function passedEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' };
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && (key === 'CI' || key.startsWith('FLOWTEL_'))) env[key] = value;
  }
  return env;
}

async function main(argv: string[]): Promise<number> {
  const separator = argv.indexOf('--');
  if (separator < 0 || separator === argv.length - 1) {
    process.stderr.write('usage: run.js [--kernels 5.10,6.1,6.12] [--timeout-minutes N] -- COMMAND...\n');
    return 2;
  }
  const options = argv.slice(0, separator);
  const kernelsAt = options.indexOf('--kernels');
  const kernels = kernelsAt >= 0 ? options[kernelsAt + 1].split(',') : VM_KERNELS;
  const timeoutAt = options.indexOf('--timeout-minutes');
  const timeoutMs = (timeoutAt >= 0 ? Number(options[timeoutAt + 1]) : 30) * 60_000;
  const command = argv
    .slice(separator + 1)
    .map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  let failed = 0;
  for (const series of kernels) {
    const result = await runInVm({
      series,
      command,
      cwd: process.cwd(),
      env: passedEnv(),
      timeoutMs,
      onLine: (line) => process.stdout.write(`[${series}] ${line}\n`),
    });
    const outcome = result.timedOut ? 'timed out' : result.exitCode === null ? 'died (no exit code)' : `exit ${result.exitCode}`;
    process.stdout.write(`[${series}] ${result.release}: ${outcome} after ${(result.durationMs / 1000).toFixed(0)} s\n`);
    if (result.exitCode !== 0) {
      failed++;
      process.stdout.write(`[${series}] console tail:\n${result.consoleLog.split('\n').slice(-30).join('\n')}\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  },
);
