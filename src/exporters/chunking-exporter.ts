/**
 * Splits a large metrics export into several OTLP requests. One request with
 * every flow series of a busy node is tens of MB, over the 4 MiB gRPC message
 * limit that collectors use by default, and a rejected request loses every
 * metric in it. Data points are cut into chunks of at most `maxDataPoints`,
 * keeping the resource, scope and metric descriptors on each chunk.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { AggregationTemporality, InstrumentType, MetricData, PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';

export function splitResourceMetrics(metrics: ResourceMetrics, maxDataPoints: number): ResourceMetrics[] {
  const chunks: ResourceMetrics[] = [];
  let current: ResourceMetrics = { resource: metrics.resource, scopeMetrics: [] };
  let points = 0;
  const flush = () => {
    if (points > 0) chunks.push(current);
    current = { resource: metrics.resource, scopeMetrics: [] };
    points = 0;
  };
  for (const scope of metrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      const dataPoints = metric.dataPoints as unknown[];
      for (let start = 0; start < dataPoints.length || (start === 0 && dataPoints.length === 0); ) {
        if (points >= maxDataPoints) flush();
        const take = Math.min(maxDataPoints - points, dataPoints.length - start) || 0;
        const part = { ...metric, dataPoints: dataPoints.slice(start, start + take) } as MetricData;
        let target = current.scopeMetrics.find((s) => s.scope === scope.scope);
        if (!target) {
          target = { scope: scope.scope, metrics: [] };
          current.scopeMetrics.push(target);
        }
        target.metrics.push(part);
        points += Math.max(take, dataPoints.length === 0 ? 1 : 0);
        start += take;
        if (dataPoints.length === 0) break;
      }
    }
  }
  flush();
  return chunks;
}

export class ChunkingMetricExporter implements PushMetricExporter {
  constructor(
    private readonly inner: PushMetricExporter,
    private readonly maxDataPoints: number,
  ) {}

  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    const chunks = splitResourceMetrics(metrics, this.maxDataPoints);
    let failed: ExportResult | undefined;
    let pending = chunks.length;
    if (pending === 0) {
      resultCallback({ code: ExportResultCode.SUCCESS });
      return;
    }
    for (const chunk of chunks) {
      this.inner.export(chunk, (result) => {
        if (result.code !== ExportResultCode.SUCCESS && !failed) failed = result;
        if (--pending === 0) resultCallback(failed ?? { code: ExportResultCode.SUCCESS });
      });
    }
  }

  selectAggregationTemporality(instrumentType: InstrumentType): AggregationTemporality {
    return this.inner.selectAggregationTemporality!(instrumentType);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}
