/**
 * A MetricProducer fed by probe groups' series snapshots (src/tables/series.ts).
 * Each reader (OTLP, Prometheus, console) pulls it at collection time. Data
 * is cumulative (kernel counters are running totals); each series keeps the
 * start time of its first appearance and is dropped when a snapshot stops
 * containing it.
 */
import { diag, ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type MetricData,
  type Histogram,
  type MetricProducer,
  type SumMetricData,
} from '@opentelemetry/sdk-metrics';
import type { HistogramSeries, NumberSeries, SeriesList, SeriesRegistry, SeriesSnapshot } from '../tables/series';
import { lazyMetric } from './lazy-points';
import { ATTRIBUTE_PARTS } from './otlp/attributes';

/**
 * A data point whose attributes are read through to its series when the
 * exporter reads them: a flow series builds its attributes on each read, so
 * holding them would keep one object per flow for the whole export. The OTLP
 * encoder reads the series' attribute parts instead (src/exporters/otlp/attributes.ts).
 */
abstract class SeriesPoint {
  constructor(
    private readonly series: NumberSeries | HistogramSeries,
    readonly startTime: HrTime,
    readonly endTime: HrTime,
  ) {}

  get attributes(): Attributes {
    return this.series.attributes;
  }

  [ATTRIBUTE_PARTS](): readonly Attributes[] | undefined {
    return this.series.attributeParts?.();
  }
}

/** A histogram's data point; all are made at collection. */
class HistogramPoint extends SeriesPoint implements DataPoint<Histogram> {
  readonly value: Histogram;

  constructor(series: HistogramSeries, boundaries: number[], startTime: HrTime, endTime: HrTime) {
    super(series, startTime, endTime);
    this.value = { buckets: { boundaries, counts: series.counts }, sum: series.sum, count: series.count };
  }
}

/** A data point of a series list, made for one OTLP request. */
class ListPoint extends SeriesPoint implements DataPoint<number> {
  constructor(
    series: NumberSeries,
    startTime: HrTime,
    endTime: HrTime,
    readonly value: number,
  ) {
    super(series, startTime, endTime);
  }
}

/** Points start..end-1 of a series list, made for one OTLP request; they live only as long as the request. */
function pointsOfList(list: SeriesList, start: number, end: number, endTime: HrTime): Array<DataPoint<number>> {
  const points: Array<DataPoint<number>> = [];
  for (let i = start; i < end; i++) {
    const series = list.at(i);
    points.push(new ListPoint(series, series.startTime, endTime, series.value));
  }
  return points;
}

export class SeriesProducer implements MetricProducer, SeriesRegistry {
  private readonly sources = new Set<() => SeriesSnapshot>();
  /** Start time of each exported series, by metric name and series key (the keys are the groups' own stable strings). */
  private readonly startTimes = new Map<string, Map<string, { time: HrTime; pass: number }>>();
  private pass = 0;
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
    const pass = ++this.pass;
    let points = 0;
    const startsOf = (metric: string) => {
      let starts = this.startTimes.get(metric);
      if (!starts) this.startTimes.set(metric, (starts = new Map()));
      return starts;
    };
    const startOf = (starts: Map<string, { time: HrTime; pass: number }>, key: string): HrTime => {
      let start = starts.get(key);
      if (!start) starts.set(key, (start = { time: now, pass }));
      start.pass = pass;
      points++;
      return start.time;
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
        const sum = {
          descriptor: { name: metric.name, description: metric.description, unit: metric.unit, valueType: ValueType.INT },
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.SUM,
          isMonotonic: monotonic,
        } as const;
        if (Array.isArray(series)) {
          const starts = startsOf(metric.name);
          metrics.push({
            ...sum,
            dataPoints: series.map((s) => ({ startTime: s.startTime ?? startOf(starts, s.key), endTime: now, attributes: s.attributes, value: s.value })),
          });
        } else {
          // Series made on demand carry their start times: their points are made when the exporter reads them.
          const list = series as SeriesList;
          metrics.push(lazyMetric<SumMetricData>(sum, { length: list.length, slice: (start, end) => pointsOfList(list, start, end, now) }));
        }
      }
      for (const { metric, boundaries, series } of snapshot.histograms ?? []) {
        const starts = startsOf(metric.name);
        metrics.push({
          descriptor: { name: metric.name, description: metric.description, unit: metric.unit, valueType: ValueType.DOUBLE },
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.HISTOGRAM,
          dataPoints: series.map((s) => new HistogramPoint(s, boundaries, startOf(starts, s.key), now)),
        });
      }
    }
    // Series not reported this time have ended; a later return starts afresh.
    let tracked = 0;
    for (const starts of this.startTimes.values()) tracked += starts.size;
    if (tracked > points) {
      for (const [metric, starts] of this.startTimes) {
        for (const [key, start] of starts) if (start.pass !== pass) starts.delete(key);
        if (starts.size === 0) this.startTimes.delete(metric);
      }
    }
    this.lastCollectionSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    return {
      resourceMetrics: { resource: this.resource, scopeMetrics: [{ scope: this.scope, metrics }] },
      errors,
    };
  }
}
