/**
 * Command-line parsing for `flowtel`. Flags that set configuration fields
 * are listed in CONFIG_FLAGS; everything is validated by the config schema.
 */
import { CONFIG_FLAGS, PROBE_GROUPS_FLAG } from '../config/config';
import { PROBE_GROUPS } from '../probes/registry';
import { ConfigError } from '../config/schema';

export type OutputFormat = 'table' | 'json';

export interface ParsedArgs {
  command: 'run' | 'validate' | 'doctor' | 'help' | 'version';
  configFile?: string;
  configFlags: Array<[string, string]>;
  /** doctor: how to print the report (default: a table on a terminal, JSON otherwise). */
  output?: OutputFormat;
}

export const USAGE = `Usage: flowtel <command> [flags]

Commands:
  run        load the probes and export telemetry until SIGINT/SIGTERM
  validate   check a config (--config FILE, flags, OTEL_* variables) and exit: 0 valid, 2 not
  doctor     try everything the agent needs on this node (kernel, privileges, each probe group's
             hooks loaded and attached for real, OTLP endpoint, Kubernetes API and RBAC) and
             report: exit 0 all good, 1 degraded, 2 cannot run. -o table|json (a table on a
             terminal, JSON otherwise); takes the same config and flags as run
  help       show this text
  version    print the version

Flags for run, validate and doctor (each overrides the config file, which overrides OTEL_* variables):
  --config FILE                  YAML or JSON config file
  ${`${PROBE_GROUPS_FLAG} LIST`.padEnd(30)} load only these probe groups (comma-separated): ${PROBE_GROUPS.map((g) => g.name).join(', ')}
${Object.entries(CONFIG_FLAGS)
  .map(([flag, field]) => `  ${`${flag} VALUE`.padEnd(30)} sets ${field}`)
  .join('\n')}

With no OTLP endpoint (--otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT), metrics are
served for Prometheus on :9464/metrics and printed on the console.`;

export function parseArgs(argv: string[]): ParsedArgs {
  const [command = 'help', ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') return { command: 'help', configFlags: [] };
  if (command === 'version' || command === '--version') return { command: 'version', configFlags: [] };
  if (command !== 'run' && command !== 'validate' && command !== 'doctor') {
    throw new ConfigError('command', command, 'one of run, validate, doctor, help, version', 'the command line');
  }
  const parsed: ParsedArgs = { command, configFlags: [] };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const output = command === 'doctor' && (flag === '-o' || flag === '--output');
    if (flag !== '--config' && !output && flag !== PROBE_GROUPS_FLAG && !Object.hasOwn(CONFIG_FLAGS, flag)) {
      throw new ConfigError(
        flag,
        arg,
        `a known flag (${['--config', ...(command === 'doctor' ? ['-o'] : []), PROBE_GROUPS_FLAG, ...Object.keys(CONFIG_FLAGS)].join(', ')})`,
        'the command line',
      );
    }
    const value: string | undefined = eq > 0 ? arg.slice(eq + 1) : rest[i + 1];
    if (eq < 0) i++;
    if (value === undefined || (eq < 0 && value.startsWith('--'))) {
      throw new ConfigError(flag, undefined, 'a value after the flag', 'the command line');
    }
    if (flag === '--config') parsed.configFile = value;
    else if (output) {
      if (value !== 'table' && value !== 'json') throw new ConfigError(flag, value, 'table or json', 'the command line');
      parsed.output = value;
    } else parsed.configFlags.push([flag, value]);
  }
  return parsed;
}
