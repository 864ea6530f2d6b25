/**
 * Metric data whose data points are made when read, a slice at a time.
 *
 * A node with 100,000 flows has 200,000 flow data points per collection.
 * Made all at once, they are 200,000 long-lived objects per collection (each
 * promoted out of V8's young generation, then marked), held for the whole of
 * an export that sends them in several requests. The chunking exporter reads
 * a lazy metric one request's slice at a time; any other reader of
 * `dataPoints` (Prometheus, console) gets them all, made on that read.
 */
import type { MetricData } from '@opentelemetry/sdk-metrics';

const POINT_SOURCE = Symbol('flowtel.pointSource');

type DataPoints = MetricData['dataPoints'];

export interface PointSource {
  readonly length: number;
  /** Data points start..end-1, new objects on each call. */
  slice(start: number, end: number): DataPoints;
}

/** `metric` (without data points) whose `dataPoints` come from `source` when read. */
export function lazyMetric<M extends MetricData>(metric: Omit<M, 'dataPoints'>, source: PointSource): M {
  const out = { ...metric } as M;
  // Not enumerable: spreading a lazy metric must not make every point.
  Object.defineProperty(out, 'dataPoints', { get: () => source.slice(0, source.length), enumerable: false });
  Object.defineProperty(out, POINT_SOURCE, { value: source, enumerable: false });
  return out;
}

/** How many data points `metric` has, without making them. */
export function pointCount(metric: MetricData): number {
  const source = (metric as { [POINT_SOURCE]?: PointSource })[POINT_SOURCE];
  return source ? source.length : metric.dataPoints.length;
}

/** Data points start..end-1 of `metric`; for a lazy metric only those are made. */
export function pointsOf(metric: MetricData, start: number, end: number): DataPoints {
  const source = (metric as { [POINT_SOURCE]?: PointSource })[POINT_SOURCE];
  return source ? source.slice(start, end) : (metric.dataPoints.slice(start, end) as DataPoints);
}
