import type { Attributes, HrTime, Meter, ObservableCounter } from '@opentelemetry/api';
import type { MetricName } from '../../semconv';
import type { NumberSeries, SeriesSnapshot } from '../series';
import type { SeriesTotals } from './endpoint-counters';

/** An ObservableCounter with the name, unit and description from src/semconv (agent self-metrics). */
export function observableCounter(meter: Meter, metric: MetricName): ObservableCounter {
  return meter.createObservableCounter(metric.name, { unit: metric.unit, description: metric.description });
}

/**
 * One field of a counter-table row as a series. Its attributes are the
 * row's, read through when the exporter reads them: a row builds them on
 * each read rather than keep them (see RowIdentity).
 */
class FieldSeries implements NumberSeries {
  constructor(
    private readonly row: { readonly attributes: Attributes },
    readonly key: string,
    readonly value: number,
    readonly startTime: HrTime | undefined,
  ) {}

  get attributes(): Attributes {
    return this.row.attributes;
  }
}

/** One field of counter-table rows as series. */
export function seriesOf<F extends string>(rows: Array<SeriesTotals<F>>, field: F): NumberSeries[] {
  return rows.map((row) => new FieldSeries(row, row.seriesKey, row.totals[field], row.startTime));
}

/** One monotonic sum per (metric, field) of counter-table rows: what every counter group registers. */
export function counterSums<F extends string>(rows: Array<SeriesTotals<F>>, metrics: ReadonlyArray<readonly [MetricName, F]>): SeriesSnapshot {
  return { sums: metrics.map(([metric, field]) => ({ metric, monotonic: true, series: seriesOf(rows, field) })) };
}
