/** Running commands for the test node, `flowtel demo` and the benchmarks. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCommand(cmd: string, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    // A stdin pipe only when there is input: writing to a command that already
    // exited raises EPIPE.
    const child = spawn(cmd, args, { stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (options.input !== undefined && child.stdin) {
      child.stdin.on('error', (err) => (stderr += `stdin: ${err.message}\n`));
      child.stdin.end(options.input);
    }
  });
}

/** Runs a command and throws with its stderr when it fails. */
export async function mustRun(cmd: string, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const result = await runCommand(cmd, args, options);
  if (result.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${result.code ?? result.signal}): ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result.stdout;
}

/** Starts a long-running process; the caller owns it. */
export function startProcess(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

/** Resolves when the process exits (immediately if it already has). */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
