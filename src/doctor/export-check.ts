/**
 * The OTLP endpoint, checked with a real export: an empty metrics request
 * (a resource with no metrics), which a collector accepts and stores nothing
 * of, through the same exporter the agent uses.
 */
import { ExportResultCode } from '@opentelemetry/core';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { FlowtelConfig } from '../config/config';
import { agentResource } from '../exporters/resource';
import type { DoctorCheck } from './report';

const DOCTOR_EXPORT_TIMEOUT_MS = 10_000;

export async function otlpCheck(config: FlowtelConfig, version: string): Promise<DoctorCheck> {
  const otlp = config.exporters.otlp;
  if (otlp.endpoint === undefined) {
    const local = `Prometheus on ${config.exporters.prometheus.host}:${config.exporters.prometheus.port} and the console`;
    return { kind: 'export', name: 'otlp', status: 'info', detail: `no endpoint set: the agent serves ${local}` };
  }
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { resolveGrpcEndpoint } = require('../exporters/otlp/grpc-endpoint') as typeof import('../exporters/otlp/grpc-endpoint');
  const { OtlpGrpcMetricExporter } = require('../exporters/otlp/metric-exporter') as typeof import('../exporters/otlp/metric-exporter');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const timeoutMillis = Math.min(otlp.exportTimeoutMs, DOCTOR_EXPORT_TIMEOUT_MS);
  const exporter = new OtlpGrpcMetricExporter({ endpoint: resolveGrpcEndpoint(otlp.endpoint, 'METRICS', otlp.headers), userAgent: `flowtel/${version}`, timeoutMillis });
  const empty: ResourceMetrics = { resource: agentResource(config.nodeName, version), scopeMetrics: [] };
  const started = Date.now();
  try {
    const result = await new Promise<{ code: ExportResultCode; error?: Error }>((resolve) => exporter.export(empty, resolve));
    const ms = Date.now() - started;
    if (result.code === ExportResultCode.SUCCESS) return { kind: 'export', name: 'otlp', status: 'ok', detail: `${otlp.endpoint} accepted an export (${ms} ms)` };
    return {
      kind: 'export',
      name: 'otlp',
      status: 'unavailable',
      detail: `${otlp.endpoint} did not accept an export within ${timeoutMillis} ms: ${result.error?.message.split('\n')[0] ?? 'failed'}`,
      impact: 'every metric and log record: nothing reaches the collector',
    };
  } finally {
    await exporter.shutdown();
  }
}
