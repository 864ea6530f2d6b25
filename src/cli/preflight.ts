/**
 * Every check of the operator's input that `run` makes before it loads a
 * program, in one place, so that `validate` rejects exactly what `run` would,
 * with the same message. Throws ConfigError. Facts of the node (privileges,
 * the kernel's drop reasons) are not input: run and doctor report those. Nor
 * is a kubeconfig run cannot use: the agent then runs with cgroup attribution.
 */
import type { FlowtelConfig } from '../config/config';
import { ConfigError } from '../config/schema';
import { resolveGrpcEndpoint } from '../exporters/otlp/grpc-endpoint';

export function checkBeforeLoad(config: FlowtelConfig, env: NodeJS.ProcessEnv): void {
  const otlp = config.exporters.otlp;
  if (otlp.endpoint !== undefined) {
    // Both signals: each may have its own TLS files, headers and compression variables.
    resolveGrpcEndpoint(otlp.endpoint, 'METRICS', otlp.headers, env);
    resolveGrpcEndpoint(otlp.endpoint, 'LOGS', otlp.headers, env);
  }
  const prometheusOn = config.exporters.prometheus.enabled ?? otlp.endpoint === undefined;
  if (prometheusOn && config.health.enabled && config.health.port === config.exporters.prometheus.port) {
    throw new ConfigError(
      'health.port',
      config.health.port,
      `a port other than exporters.prometheus.port (${config.exporters.prometheus.port}): both listen`,
      'the merged configuration',
    );
  }
}
