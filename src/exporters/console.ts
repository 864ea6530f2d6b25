/**
 * Readable console output for the local default (no collector configured):
 * one line per data point and per log record, instead of the SDK's object
 * dumps. Writes to a stream so tests and `flowtel top` can capture it.
 */
import type { Attributes } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableLogRecord, LogRecordExporter } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, DataPointType, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';

export function formatAttributes(attributes: Attributes | Record<string, unknown>): string {
  const parts = Object.entries(attributes)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) // not localeCompare: ICU collation data costs 2 MiB of RSS
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return parts.length ? `{${parts.join(', ')}}` : '';
}

export class ConsoleMetricLines implements PushMetricExporter {
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    const lines: string[] = [`--- metrics ${new Date().toISOString()}`];
    for (const scope of metrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        for (const point of metric.dataPoints) {
          const name = `${metric.descriptor.name}${formatAttributes(point.attributes)}`;
          if (metric.dataPointType === DataPointType.HISTOGRAM || metric.dataPointType === DataPointType.EXPONENTIAL_HISTOGRAM) {
            const h = point.value as { count: number; sum?: number };
            lines.push(`${name} count=${h.count} sum=${h.sum ?? 0} ${metric.descriptor.unit}`);
          } else {
            lines.push(`${name} ${String(point.value)} ${metric.descriptor.unit}`);
          }
        }
      }
    }
    this.out.write(`${lines.join('\n')}\n`);
    resultCallback({ code: ExportResultCode.SUCCESS });
  }

  selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.CUMULATIVE;
  }

  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

export class ConsoleLogLines implements LogRecordExporter {
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  export(logs: ReadableLogRecord[], resultCallback: (result: ExportResult) => void): void {
    const lines = logs.map((record) => {
      const time = new Date(record.hrTime[0] * 1000 + record.hrTime[1] / 1e6).toISOString();
      const event = record.eventName ? ` ${record.eventName}` : '';
      return `${time} ${record.severityText ?? ''}${event}: ${String(record.body ?? '')} ${formatAttributes(record.attributes)}`;
    });
    if (lines.length) this.out.write(`${lines.join('\n')}\n`);
    resultCallback({ code: ExportResultCode.SUCCESS });
  }

  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}
