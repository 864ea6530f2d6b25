/**
 * The real OpenTelemetry Collector for tests: the binary scripts/build-otelcol.sh
 * builds from the collector's Go modules, run with a config the test writes,
 * stopped (and killed if it lingers) by the test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { sleep } from './agent-process';
import { tempDir } from './tmp';

export const OTELCOL = path.resolve(__dirname, '..', '..', '..', 'test', 'collector', 'otelcol', 'otelcol');

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Fails with the command that builds it when the collector binary is missing. */
export function requireOtelcol(): string {
  if (!fs.existsSync(OTELCOL)) throw new Error(`no test collector at ${OTELCOL}: run bash scripts/build-otelcol.sh (npm test does)`);
  return OTELCOL;
}

/** `otelcol validate`: exit code and output. */
export function validateConfig(file: string, env: NodeJS.ProcessEnv = {}): { code: number | null; output: string } {
  const r = spawnSync(requireOtelcol(), ['validate', '--config', file], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, output: `${r.error ? `${r.error.message}\n` : ''}${r.stdout}${r.stderr}` };
}

/** A TCP port free on loopback right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export class Collector {
  output = '';

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    running.add(child);
    child.once('exit', () => running.delete(child));
  }

  /** Starts the collector with `configYaml` and waits until it says it is ready. */
  static async start(configYaml: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<Collector> {
    const file = path.join(tempDir('otelcol'), 'config.yaml');
    fs.writeFileSync(file, configYaml);
    const collector = new Collector(spawn(requireOtelcol(), ['--config', file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
    const deadline = Date.now() + timeoutMs;
    while (!collector.output.includes('Everything is ready')) {
      if (collector.child.exitCode !== null) throw new Error(`the collector exited with ${collector.child.exitCode}:\n${collector.output}`);
      if (Date.now() > deadline) {
        await collector.stop();
        throw new Error(`the collector did not start in ${timeoutMs} ms:\n${collector.output}`);
      }
      await sleep(100);
    }
    return collector;
  }

  async stop(): Promise<number | null> {
    // Exited already: with a code, or killed by a signal (then exitCode stays null and no 'exit' event comes again).
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}
