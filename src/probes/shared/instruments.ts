import type { Meter, ObservableCounter } from '@opentelemetry/api';
import type { MetricName } from '../../semconv';
import type { NumberSeries, SeriesSnapshot } from '../series';
import type { SeriesTotals } from './endpoint-counters';

/** An ObservableCounter with the name, unit and description from src/semconv (agent self-metrics). */
export function observableCounter(meter: Meter, metric: MetricName): ObservableCounter {
  return meter.createObservableCounter(metric.name, { unit: metric.unit, description: metric.description });
}

/** One field of counter-table rows as series. */
export function seriesOf<F extends string>(rows: Array<SeriesTotals<F>>, field: F): NumberSeries[] {
  return rows.map((row) => {
    const series: NumberSeries = { key: row.seriesKey, attributes: row.attributes, value: row.totals[field] };
    if (row.startTime) series.startTime = row.startTime;
    return series;
  });
}

/** One monotonic sum per (metric, field) of counter-table rows: what every counter group registers. */
export function counterSums<F extends string>(rows: Array<SeriesTotals<F>>, metrics: ReadonlyArray<readonly [MetricName, F]>): SeriesSnapshot {
  return { sums: metrics.map(([metric, field]) => ({ metric, monotonic: true, series: seriesOf(rows, field) })) };
}
