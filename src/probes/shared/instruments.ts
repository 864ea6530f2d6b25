import type { Attributes, HrTime, Meter, ObservableCounter } from '@opentelemetry/api';
import type { MetricName } from '../../semconv';
import { AttributesOf, type AttributeSource, type NumberSeries, type SeriesList, type SeriesSnapshot } from '../series';
import type { SeriesTotals } from './endpoint-counters';

/** An ObservableCounter with the name, unit and description from src/semconv (agent self-metrics). */
export function observableCounter(meter: Meter, metric: MetricName): ObservableCounter {
  return meter.createObservableCounter(metric.name, { unit: metric.unit, description: metric.description });
}

/**
 * One field of a counter-table row as a series. Its attributes are the
 * row's, read through when the exporter reads them: a row builds them on
 * each read rather than keep them (see RowIdentity). `own`, when given, are
 * the field's attributes on top of the row's (a role, a state): a frozen
 * object shared by every row, so the exporter encodes it once.
 */
export class FieldSeries extends AttributesOf<AttributeSource> implements NumberSeries {
  constructor(
    row: AttributeSource,
    readonly key: string,
    readonly value: number,
    readonly startTime: HrTime,
    private readonly own?: Readonly<Attributes>,
  ) {
    super(row);
  }

  override get attributes(): Attributes {
    return this.own ? { ...super.attributes, ...this.own } : super.attributes;
  }

  override attributeParts(): readonly Attributes[] {
    return this.own ? [...super.attributeParts(), this.own] : super.attributeParts();
  }
}

/**
 * One field of counter-table rows as series, made when read. The rows are
 * the table's own running totals, valid until its next collect(); `extra`
 * series follow the rows.
 */
class FieldSeriesList<F extends string> implements SeriesList {
  constructor(
    private readonly rows: Array<SeriesTotals<F>>,
    private readonly field: F,
    private readonly extra: TimedSeries[],
  ) {}

  get length(): number {
    return this.rows.length + this.extra.length;
  }

  at(index: number): TimedSeries {
    const row = this.rows[index];
    if (row === undefined) return this.extra[index - this.rows.length];
    return new FieldSeries(row, row.seriesKey, row.totals[this.field], row.startTime);
  }
}

type TimedSeries = NumberSeries & { startTime: HrTime };

/** One field of counter-table rows as series, followed by `extra` series of the group's own (e.g. overflow totals). */
export function seriesOf<F extends string>(rows: Array<SeriesTotals<F>>, field: F, extra: TimedSeries[] = []): SeriesList {
  return new FieldSeriesList(rows, field, extra);
}

/** One monotonic sum per (metric, field) of counter-table rows: what every counter group registers. */
export function counterSums<F extends string>(rows: Array<SeriesTotals<F>>, metrics: ReadonlyArray<readonly [MetricName, F]>): SeriesSnapshot {
  return { sums: metrics.map(([metric, field]) => ({ metric, monotonic: true, series: seriesOf(rows, field) })) };
}
