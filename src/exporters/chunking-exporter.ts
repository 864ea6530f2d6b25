/**
 * Splits a large metrics export into several OTLP requests. One request with
 * every flow series of a busy node is tens of MB, over the 4 MiB gRPC message
 * limit that collectors use by default, and a rejected request loses every
 * metric in it. Data points are cut into chunks of at most `maxDataPoints`,
 * keeping the resource, scope and metric descriptors on each chunk.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { AggregationTemporality, InstrumentType, MetricData, PushMetricExporter, ResourceMetrics, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import type { ExportWatch } from './export-watch';
import { pointCount, pointsOf } from './lazy-points';

/**
 * The requests of a large export, each made when called: a lazy metric's
 * data points (src/exporters/lazy-points.ts) are made one request at a time,
 * so only the request being sent holds its points.
 */
export interface ChunkPlan {
  /** Data points in the request (an empty metric counts as one). */
  points: number;
  build: () => ResourceMetrics;
}

export function planChunks(metrics: ResourceMetrics, maxDataPoints: number): ChunkPlan[] {
  type Part = { scope: ScopeMetrics['scope']; metric: MetricData; start: number; end: number };
  const plans: ChunkPlan[] = [];
  let parts: Part[] = [];
  let points = 0;
  const flush = () => {
    if (parts.length === 0) return;
    const chunk = parts;
    plans.push({ points, build: () => buildChunk(metrics.resource, chunk) });
    parts = [];
    points = 0;
  };
  for (const scope of metrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      const count = pointCount(metric);
      if (count === 0) {
        // Empty metrics are kept (their descriptor is news to a collector) and count as one point.
        if (points >= maxDataPoints) flush();
        parts.push({ scope: scope.scope, metric, start: 0, end: 0 });
        points++;
        continue;
      }
      for (let start = 0; start < count;) {
        if (points >= maxDataPoints) flush();
        const take = Math.min(maxDataPoints - points, count - start);
        parts.push({ scope: scope.scope, metric, start, end: start + take });
        points += take;
        start += take;
      }
    }
  }
  flush();
  return plans;

  function buildChunk(resource: ResourceMetrics['resource'], chunk: Part[]): ResourceMetrics {
    const scopeMetrics: ScopeMetrics[] = [];
    for (const part of chunk) {
      let target = scopeMetrics.find((s) => s.scope === part.scope);
      if (!target) scopeMetrics.push((target = { scope: part.scope, metrics: [] }));
      // Spread copies the descriptor and kind; a lazy metric's points are not enumerable, so they are not made here.
      target.metrics.push({ ...part.metric, dataPoints: pointsOf(part.metric, part.start, part.end) } as MetricData);
    }
    return { resource, scopeMetrics };
  }
}

/** Every request of an export at once (tests, small exports). */
export function splitResourceMetrics(metrics: ResourceMetrics, maxDataPoints: number): ResourceMetrics[] {
  return planChunks(metrics, maxDataPoints).map((plan) => plan.build());
}

export class ChunkingMetricExporter implements PushMetricExporter {
  /** Exports refused because the previous one was still in flight. */
  skipped = 0;
  private busy = false;

  constructor(
    private readonly inner: PushMetricExporter,
    private readonly maxDataPoints: number,
    /** Told how each export ended (./export-watch). */
    private readonly watch?: ExportWatch,
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
    const chunks = planChunks(metrics, this.maxDataPoints);
    const done = (result: ExportResult, failedAt: number): void => {
      this.busy = false;
      if (result.code === ExportResultCode.SUCCESS) this.watch?.succeeded();
      else
        this.watch?.failed(
          chunks.slice(failedAt).reduce((n, c) => n + c.points, 0),
          result.error?.message ?? 'the exporter reported a failure',
        );
      resultCallback(result);
    };
    const next = (index: number): void => {
      if (index >= chunks.length) {
        done({ code: ExportResultCode.SUCCESS }, index);
        return;
      }
      this.inner.export(chunks[index].build(), (result) => {
        if (result.code !== ExportResultCode.SUCCESS) done(result, index);
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
