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
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { endpointText, resolveOtlpSettings, exporterConfig } =
    require('../exporters/otlp/signal-settings') as typeof import('../exporters/otlp/signal-settings');
  /* eslint-enable @typescript-eslint/no-require-imports */
  let settings;
  try {
    const resolved = resolveOtlpSettings(config.exporters.otlp);
    settings = resolved.metrics ?? resolved.logs;
  } catch (err) {
    return {
      kind: 'export',
      name: 'otlp',
      status: 'unavailable',
      detail: (err as Error).message,
      impact: 'every metric and log record: the agent would not start',
    };
  }
  if (!settings) {
    const local = `Prometheus on ${config.exporters.prometheus.host}:${config.exporters.prometheus.port} and the console`;
    return { kind: 'export', name: 'otlp', status: 'info', detail: `no endpoint set: the agent serves ${local}` };
  }
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { OtlpMetricExporter } = require('../exporters/otlp/metric-exporter') as typeof import('../exporters/otlp/metric-exporter');
  const { OtlpLogExporter } = require('../exporters/otlp/log-exporter') as typeof import('../exporters/otlp/log-exporter');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const timeoutMillis = Math.min(settings.timeoutMs, DOCTOR_EXPORT_TIMEOUT_MS);
  const exporterSettings = { ...exporterConfig(settings, `flowtel/${version}`), timeoutMillis };
  const where = `${endpointText(settings)} (OTLP ${settings.protocol})`;
  const empty: ResourceMetrics = { resource: agentResource(config.nodeName, version), scopeMetrics: [] };
  // An empty request of the signal that goes over OTLP (metrics, unless only logs do): the answer is what is checked.
  const exporter = settings.signal === 'METRICS' ? new OtlpMetricExporter(exporterSettings) : new OtlpLogExporter(exporterSettings);
  const started = Date.now();
  try {
    const result = await new Promise<{ code: ExportResultCode; error?: Error }>((resolve) =>
      exporter instanceof OtlpMetricExporter ? exporter.export(empty, resolve) : exporter.export([], resolve),
    );
    const ms = Date.now() - started;
    if (result.code === ExportResultCode.SUCCESS) return { kind: 'export', name: 'otlp', status: 'ok', detail: `${where} accepted an export (${ms} ms)` };
    return {
      kind: 'export',
      name: 'otlp',
      status: 'unavailable',
      detail: `${where} did not accept an export within ${timeoutMillis} ms: ${result.error?.message.split('\n')[0] ?? 'failed'}`,
      impact: 'every metric and log record: nothing reaches the collector',
    };
  } finally {
    await exporter.shutdown();
  }
}
