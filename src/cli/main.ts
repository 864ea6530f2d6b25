#!/usr/bin/env node
/**
 * flowtel CLI. Exit codes: 0 clean stop, 1 runtime failure, 2 bad input or
 * missing privileges (something the operator must fix before retrying).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Agent } from '../agent/agent';
import { AgentLog } from '../util/log';
import { packageRoot } from '../bpf/native';
import type { FlowtelConfig } from '../config/config';
import { ConfigError } from '../config/schema';
import { formatTable, runDoctor } from '../doctor';
import { parseArgs, USAGE, type OutputFormat } from './args';
import { PROBE_GROUPS } from '../probes/registry';
import { loadCommandConfig } from './load-config';
import { describeSignal, resolveOtlpSettings } from '../exporters/otlp/signal-settings';
import { effectiveCapabilities, missingBpfCapabilities } from '../bpf/capabilities';

export const EXIT_USAGE = 2;
/** A second SIGTERM or SIGINT during the stop: the shell's code for an interrupted command. */
const EXIT_SECOND_SIGNAL = 130;
/** How long past the shutdown budget the rest of the stop may take before the process exits anyway. */
const STOP_BACKSTOP_MS = 1000;

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.command === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const config = loadCommandConfig(args, process.env, packageRoot());
  if (args.command === 'doctor') return doctor(config, args.output ?? (process.stdout.isTTY ? 'table' : 'json'));
  if (args.command === 'validate') {
    // Paths that belong to the node the agent will run on (cgroup root, BPF objects) were checked too; so are the
    // groups' options against this kernel (drop reasons it lacks, say), which run warns about and ignores.
    for (const group of PROBE_GROUPS) {
      if (group.enabled(config.probes)) for (const warning of group.configWarnings(config.probes)) process.stderr.write(`flowtel: warning: ${warning}\n`);
    }
    process.stdout.write(`configuration is valid (${args.configFile ?? 'no file'})\n`);
    // Where the data would go, with every OTEL_EXPORTER_OTLP_* variable applied: what run will use.
    const otlp = resolveOtlpSettings(config.exporters.otlp, process.env);
    for (const signal of [otlp.metrics, otlp.logs]) if (signal) process.stdout.write(`${describeSignal(signal)}\n`);
    if (!otlp.metrics && !otlp.logs) process.stdout.write('no OTLP endpoint: Prometheus and the console unless the config turns them off\n');
    return 0;
  }

  const missing = missingBpfCapabilities(effectiveCapabilities());
  if (missing.length) {
    process.stderr.write(
      `flowtel: missing capability ${missing.join(' and ')}: loading and attaching eBPF tracepoint programs needs ` +
        `CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN). Run as root, or grant them (the Helm chart does).\n`,
    );
    return EXIT_USAGE;
  }

  const log = new AgentLog(config.logLevel);
  const agent = await Agent.start({ config, version: version(), log });
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // The operator (or kubelet) will not wait: the kernel detaches our programs when the process exits.
        log.warn('second signal: exiting now, without the final export', { signal });
        process.exit(EXIT_SECOND_SIGNAL);
      }
      stopping = true;
      log.info('stopping', { signal, budgetMs: config.shutdown.timeoutMs });
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  // The stop bounds its own export; this bounds everything else it waits for (servers closing, a stuck handler).
  const backstop = setTimeout(() => {
    log.error(`stop did not finish within the shutdown budget of ${config.shutdown.timeoutMs} ms and ${STOP_BACKSTOP_MS} ms more: exiting`);
    process.exit(1);
  }, config.shutdown.timeoutMs + STOP_BACKSTOP_MS);
  backstop.unref();
  await agent.stop();
  clearTimeout(backstop);
  return 0;
}

/** Runs every check and prints the report; the exit code is the report's. */
async function doctor(config: FlowtelConfig, output: OutputFormat): Promise<number> {
  const report = await runDoctor(config, version());
  process.stdout.write(output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatTable(report));
  return report.exitCode;
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`flowtel: ${err.message}\n`);
      process.exit(EXIT_USAGE);
    }
    // Operators need the cause, not our stack; FLOWTEL_DEBUG=1 shows it for bug reports.
    const detail = err instanceof Error ? (process.env.FLOWTEL_DEBUG ? (err.stack ?? err.message) : err.message) : String(err);
    process.stderr.write(`flowtel: ${detail}\n`);
    process.exit(1);
  },
);
