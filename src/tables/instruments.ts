import type { Attributes, HrTime } from '@opentelemetry/api';
import type { MetricName } from '../semconv';
import { AttributesOf, type AttributeSource, type NumberSeries, type SeriesList, type SeriesSnapshot } from './series';
import type { CounterRows } from './endpoint-counters';

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
    /** The key, or a row that makes it when asked: exporters of series lists never ask (they carry their start time). */
    private readonly keyOrRow: string | { readonly seriesKey: string },
    readonly value: number,
    readonly startTime: HrTime,
    private readonly own?: Readonly<Attributes>,
  ) {
    super(row);
  }

  get key(): string {
    return typeof this.keyOrRow === 'string' ? this.keyOrRow : this.keyOrRow.seriesKey;
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
 * the tables' own running totals, valid until their next collect(); `extra`
 * series follow the rows.
 */
class FieldSeriesList<F extends string> implements SeriesList {
  private readonly fieldIndexes: number[];
  private readonly rowCount: number;

  constructor(
    private readonly tables: ReadonlyArray<CounterRows<F>>,
    field: F,
    private readonly extra: TimedSeries[],
  ) {
    this.fieldIndexes = tables.map((rows) => {
      const index = rows.fields.indexOf(field);
      if (index < 0) throw new Error(`counter rows have no field '${field}' (have: ${rows.fields.join(', ')})`);
      return index;
    });
    this.rowCount = tables.reduce((n, rows) => n + rows.length, 0);
  }

  get length(): number {
    return this.rowCount + this.extra.length;
  }

  at(index: number): TimedSeries {
    if (index >= this.rowCount) return this.extra[index - this.rowCount];
    let t = 0;
    while (index >= this.tables[t].length) index -= this.tables[t++].length;
    const row = this.tables[t].at(index);
    return new FieldSeries(row, row, row.total(this.fieldIndexes[t]), row.startTime);
  }
}

type TimedSeries = NumberSeries & { startTime: HrTime };

/** One field of counter-table rows (of one table, or several in order) as series, followed by `extra` series of the group's own (e.g. overflow totals). */
export function seriesOf<F extends string>(rows: CounterRows<F> | ReadonlyArray<CounterRows<F>>, field: F, extra: TimedSeries[] = []): SeriesList {
  return new FieldSeriesList(isRowsList(rows) ? rows : [rows], field, extra);
}

function isRowsList<F extends string>(rows: CounterRows<F> | ReadonlyArray<CounterRows<F>>): rows is ReadonlyArray<CounterRows<F>> {
  return Array.isArray(rows);
}

/** One monotonic sum per (metric, field) of counter-table rows: what every counter group registers. */
export function counterSums<F extends string>(rows: CounterRows<F>, metrics: ReadonlyArray<readonly [MetricName, F]>): SeriesSnapshot {
  return { sums: metrics.map(([metric, field]) => ({ metric, monotonic: true, series: seriesOf(rows, field) })) };
}
