/**
 * A MetricProducer fed by probe groups' series snapshots (src/probes/series.ts).
 * Each reader (OTLP, Prometheus, console) pulls it at collection time. Data
 * is cumulative (kernel counters are running totals); each series keeps the
 * start time of its first appearance and is dropped when a snapshot stops
 * containing it.
 */
import { diag, ValueType, type HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { SeriesRegistry, SeriesSnapshot } from '../probes/series';

export class SeriesProducer implements MetricProducer, SeriesRegistry {
  private readonly sources = new Set<() => SeriesSnapshot>();
  private startTimes = new Map<string, HrTime>();
  /** Seconds the last collect() took (every group's map reads included): exported as a self-metric. */
  lastCollectionSeconds = 0;

  constructor(
    private readonly scope: { name: string; version: string },
    private readonly resource: CollectionResult['resourceMetrics']['resource'],
  ) {}

  register(collect: () => SeriesSnapshot): () => void {
    this.sources.add(collect);
    return () => this.sources.delete(collect);
  }

  async collect(): Promise<CollectionResult> {
    const started = process.hrtime.bigint();
    const now = hrTime();
    const seen = new Map<string, HrTime>();
    const startOf = (metric: string, key: string): HrTime => {
      const id = `${metric}\u0000${key}`;
      const start = this.startTimes.get(id) ?? now;
      seen.set(id, start);
      return start;
    };
    const metrics: MetricData[] = [];
    const errors: unknown[] = [];
    for (const collect of this.sources) {
      let snapshot: SeriesSnapshot;
      try {
        snapshot = collect();
      } catch (err) {
        // One failing group must not take the others' data down with it.
        errors.push(err);
        diag.error('flowtel: a series source failed', err);
        continue;
      }
      for (const { metric, monotonic, series } of snapshot.sums ?? []) {
        metrics.push({
          descriptor: { name: metric.name, description: metric.description, unit: metric.unit, valueType: ValueType.INT },
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.SUM,
          isMonotonic: monotonic,
          dataPoints: series.map((s) => ({ startTime: startOf(metric.name, s.key), endTime: now, attributes: s.attributes, value: s.value })),
        });
      }
      for (const { metric, boundaries, series } of snapshot.histograms ?? []) {
        metrics.push({
          descriptor: { name: metric.name, description: metric.description, unit: metric.unit, valueType: ValueType.DOUBLE },
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.HISTOGRAM,
          dataPoints: series.map((s) => ({
            startTime: startOf(metric.name, s.key),
            endTime: now,
            attributes: s.attributes,
            value: { buckets: { boundaries, counts: s.counts }, sum: s.sum, count: s.count },
          })),
        });
      }
    }
    // Series not reported this time have ended; a later return starts afresh.
    this.startTimes = seen;
    this.lastCollectionSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    return {
      resourceMetrics: { resource: this.resource, scopeMetrics: [{ scope: this.scope, metrics }] },
      errors,
    };
  }
}
