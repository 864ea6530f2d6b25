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
  /** Exports refused because the previous one was still in flight. */
  skipped = 0;
  private busy = false;

  constructor(
    private readonly inner: PushMetricExporter,
    private readonly maxDataPoints: number,
  ) {}

  /**
   * Sends the chunks one after another. The OTLP exporter refuses more than a
   * few concurrent requests ("Concurrency Limit reached"), so sending 40
   * chunks of a 100,000-flow collection at once lost most of them. The first
   * failure ends the export: with cumulative temporality the next collection
   * carries every total again, and a collector that is down would only make
   * each remaining chunk wait for its own timeout.
   *
   * A collection that arrives while the previous export is still being sent
   * (the reader's timeout fired first) is skipped and counted: overlapping
   * exports would pile up in memory and fall further behind.
   */
  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    if (this.busy) {
      this.skipped++;
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('the previous metrics export is still being sent; this collection is skipped') });
      return;
    }
    this.busy = true;
    const done = (result: ExportResult): void => {
      this.busy = false;
      resultCallback(result);
    };
    const chunks = splitResourceMetrics(metrics, this.maxDataPoints);
    const next = (index: number): void => {
      if (index >= chunks.length) {
        done({ code: ExportResultCode.SUCCESS });
        return;
      }
      this.inner.export(chunks[index], (result) => {
        if (result.code !== ExportResultCode.SUCCESS) done(result);
        else next(index + 1);
      });
    };
    next(0);
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
