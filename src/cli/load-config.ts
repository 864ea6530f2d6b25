/**
 * The configuration a command runs with: defaults, OTEL_* and NODE_NAME
 * variables, the config file, then flags, merged and validated. For run and
 * validate it also passes every check `run` makes before loading programs,
 * so the two reject the same input with the same message.
 */
import { configFromEnv, configFromFile, configFromFlags, defaultConfig, resolveConfig, type FlowtelConfig } from '../config/config';
import type { ParsedArgs } from './args';
import { checkBeforeLoad } from './preflight';

export function loadCommandConfig(args: ParsedArgs, env: NodeJS.ProcessEnv, packageRoot: string): FlowtelConfig {
  const layers = [{ partial: configFromEnv(env), source: 'environment' }];
  if (args.configFile) layers.push({ partial: configFromFile(args.configFile), source: `config file ${args.configFile}` });
  layers.push({ partial: configFromFlags(args.configFlags), source: 'flags' });
  // doctor reports the node's paths and the exporters' trouble as findings, not as a refusal to start.
  const config = resolveConfig(defaultConfig(packageRoot), layers, args.command !== 'doctor');
  if (args.command !== 'doctor') checkBeforeLoad(config, env);
  return config;
}
