/**
 * Command-line parsing for `flowtel`. Flags that set configuration fields
 * are listed in CONFIG_FLAGS; everything is validated by the config schema.
 */
import { CONFIG_FLAGS } from '../config/config';
import { ConfigError } from '../config/schema';

export interface ParsedArgs {
  command: 'run' | 'validate' | 'help' | 'version';
  configFile?: string;
  configFlags: Array<[string, string]>;
}

export const USAGE = `Usage: flowtel <command> [flags]

Commands:
  run        load the probes and export telemetry until SIGINT/SIGTERM
  validate   check a config (--config FILE, flags, OTEL_* variables) and exit: 0 valid, 2 not
  help       show this text
  version    print the version

Flags for run (each overrides the config file, which overrides OTEL_* variables):
  --config FILE              YAML or JSON config file
${Object.entries(CONFIG_FLAGS)
  .map(([flag, field]) => `  ${`${flag} VALUE`.padEnd(27)}sets ${field}`)
  .join('\n')}

With no OTLP endpoint (--otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT), metrics are
served for Prometheus on :9464/metrics and printed on the console.`;

export function parseArgs(argv: string[]): ParsedArgs {
  const [command = 'help', ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') return { command: 'help', configFlags: [] };
  if (command === 'version' || command === '--version') return { command: 'version', configFlags: [] };
  if (command !== 'run' && command !== 'validate') throw new ConfigError('command', command, 'one of run, validate, help, version', 'the command line');
  const parsed: ParsedArgs = { command, configFlags: [] };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (flag !== '--config' && !(flag in CONFIG_FLAGS)) {
      throw new ConfigError(flag, arg, `a known flag (${['--config', ...Object.keys(CONFIG_FLAGS)].join(', ')})`, 'the command line');
    }
    let value: string | undefined = eq > 0 ? arg.slice(eq + 1) : rest[i + 1];
    if (eq < 0) i++;
    if (value === undefined || (eq < 0 && value.startsWith('--'))) {
      throw new ConfigError(flag, undefined, 'a value after the flag', 'the command line');
    }
    if (flag === '--config') parsed.configFile = value;
    else parsed.configFlags.push([flag, value]);
  }
  return parsed;
}
