/**
 * The agent as operators run it: `node dist/src/cli/main.js run ...` in a
 * child process, stopped with SIGTERM. Tests read what it exported, never
 * its internals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { OtlpReceiver, type MetricsExport } from '../../src/testbed/otlp-receiver';

export const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');
/** Node flags the agent ships with (Dockerfile ENTRYPOINT, npm start): tests and benchmarks run it the same way. */
export const AGENT_NODE_FLAGS = ['--max-semi-space-size=1', '--v8-pool-size=1', '--no-allocation-site-pretenuring'];

/**
 * Environment the agent ships with (Dockerfile ENV, npm start). A fixed glibc
 * mmap threshold: each OTLP request of a large export is a buffer of a few MB,
 * and glibc's default raises its threshold after the first such buffer is
 * freed, so later ones came from the heap arena, which does not shrink back
 * (about 10-15 MiB of RSS at 100,000 flows).
 */
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072' };

// Agents a failed test did not stop must not outlive (or hang) the test run.
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export class AgentProcess {
  stdout = '';
  stderr = '';
  private readonly exit: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    healthPort: number,
  ) {
    this.healthPort = healthPort;
    child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    running.add(child);
    this.exit = new Promise((resolve) =>
      child.once('exit', (code) => {
        running.delete(child);
        resolve(code);
      }),
    );
  }

  /** A random health port unless the test chose one: agents of one run must not collide on the default. */
  readonly healthPort: number;

  static start(args: string[], env: NodeJS.ProcessEnv = {}): AgentProcess {
    const chosen = args.indexOf('--health-port');
    const healthPort = chosen >= 0 ? Number(args[chosen + 1]) : randomHealthPort();
    const all = chosen >= 0 ? args : [...args, '--health-port', String(healthPort)];
    return new AgentProcess(
      spawn(process.execPath, [...AGENT_NODE_FLAGS, CLI, 'run', ...all], { env: agentEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }),
      healthPort,
    );
  }

  /**
   * Resolves once the agent logged that it runs; rejects if it exits first. The wait is long because under
   * qemu's emulation (the kernel matrix) start-up takes tens of seconds; a healthy agent ends it early. The
   * agent's start-up warnings (groups degraded or disabled on this kernel) are printed, so every run says
   * what ran.
   */
  async running(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stderr.includes('msg="flowtel running"')) {
      if (this.child.exitCode !== null) throw new Error(`agent exited with ${this.child.exitCode}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`agent did not start in ${timeoutMs} ms: ${this.stderr}`);
      await sleep(50);
    }
    for (const line of this.stderr.split('\n')) {
      const warning = /level=(?:warn|error) msg="((?:[^"\\]|\\.)*)"/.exec(line);
      if (warning) console.log(`      agent: ${warning[1]}`);
    }
  }

  /** SIGTERM and wait; returns the exit code. */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exit;
    clearTimeout(timer);
    return code;
  }

  exited(): Promise<number | null> {
    return this.exit;
  }
}

/** The test's environment without OTEL_* variables (which would redirect the agent), plus `env`. */
export function agentEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const clean = { ...process.env };
  for (const key of Object.keys(clean)) if (key.startsWith('OTEL_')) delete clean[key];
  return { ...clean, ...AGENT_ENV, ...env };
}

/** A health port for a test agent: the default may be taken by another agent on this machine. */
export function randomHealthPort(): number {
  return 20000 + Math.floor(Math.random() * 30000);
}

/** A receiver and an agent exporting to it every second; the agent is running when this resolves. */
export async function startAgentWithReceiver(args: string[]): Promise<{ agent: AgentProcess; receiver: OtlpReceiver }> {
  const receiver = await OtlpReceiver.start();
  const agent = AgentProcess.start(args, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_METRIC_EXPORT_INTERVAL: '1000' });
  try {
    await agent.running();
  } catch (err) {
    await agent.stop();
    await receiver.stop();
    throw err;
  }
  return { agent, receiver };
}

/**
 * Waits for an export collected after now, received at least 1.2 s from now,
 * so it holds everything that happened before the call (and metadata has had
 * time to settle). Arrival alone is not enough: on a loaded machine a
 * collection can reach the receiver more than a second after it read the
 * kernel maps. Its points' time is taken before any map is read; the 100 ms
 * margin covers the two processes' clocks (the agent's is its start time plus
 * a monotonic clock).
 */
export async function freshExport(receiver: OtlpReceiver): Promise<void> {
  const now = Date.now();
  const receivedAfter = now + 1200;
  const collectedAfterNs = BigInt(now + 100) * 1_000_000n;
  const fresh = (e: MetricsExport) => e.receivedAt > receivedAfter && e.points.length > 0 && e.points[0].timeUnixNano > collectedAfterNs;
  await waitFor('an export collected after now', () => (receiver.metricExports.some(fresh) ? true : undefined), 10_000);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `check` returns a value that is not undefined. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}
