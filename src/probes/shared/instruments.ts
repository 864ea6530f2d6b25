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
 * each read rather than keep them (see RowIdentity).
 */
class FieldSeries extends AttributesOf<AttributeSource> implements NumberSeries {
  constructor(
    row: AttributeSource,
    readonly key: string,
    readonly value: number,
    readonly startTime: HrTime,
  ) {
    super(row);
  }
}

/**
 * One counter of a row as a series of its own, with attributes of its own on
 * top of the row's (a role, a state). `extra` is shared by every row and
 * frozen, so the exporter encodes it once; nothing of the row is copied.
 */
export class RowPartSeries implements NumberSeries {
  constructor(
    private readonly row: AttributeSource,
    readonly key: string,
    private readonly extra: Readonly<Attributes>,
    readonly value: number,
    readonly startTime: HrTime,
  ) {}

  get attributes(): Attributes {
    return { ...this.row.attributes, ...this.extra };
  }

  attributeParts(): readonly Attributes[] {
    return [...(this.row.attributeParts?.() ?? [this.row.attributes]), this.extra];
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
