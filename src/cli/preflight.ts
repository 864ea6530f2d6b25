/**
 * Every check of the operator's input that `run` makes before it loads a
 * program, in one place, so that `validate` rejects exactly what `run` would,
 * with the same message. Throws ConfigError. Facts of the node (privileges,
 * the kernel's drop reasons) are not input: run and doctor report those. Nor
 * is a kubeconfig run cannot use: the agent then runs with cgroup attribution.
 */
import type { FlowtelConfig } from '../config/config';
import { ConfigError } from '../config/schema';
import { resolveOtlpSettings, type OtlpSettings } from '../exporters/otlp/signal-settings';

/** Returns where each signal goes over OTLP, as run will send it (validate prints it). */
export function checkBeforeLoad(config: FlowtelConfig, env: NodeJS.ProcessEnv): OtlpSettings {
  const otlp = config.exporters.otlp;
  // Both signals: each may have its own endpoint, protocol, TLS files, headers, timeout and compression.
  const settings = resolveOtlpSettings(otlp, env);
  const prometheusOn = config.exporters.prometheus.enabled ?? (settings.metrics === undefined && settings.logs === undefined);
  if (prometheusOn && config.health.enabled && config.health.port === config.exporters.prometheus.port) {
    throw new ConfigError(
      'health.port',
      config.health.port,
      `a port other than exporters.prometheus.port (${config.exporters.prometheus.port}): both listen`,
      'the merged configuration',
    );
  }
  return settings;
}
