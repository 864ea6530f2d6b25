/**
 * Kernel histograms (struct flowtel_histogram: quarter-octave buckets of µs
 * values, a count and an exact sum) as explicit-bucket histogram series.
 *
 * Export boundaries are a subset of the kernel's bucket bounds, so each
 * kernel bucket falls wholly into one export bucket: counts are exact, and
 * the sum is the kernel's own. Everything else (rows summed into series,
 * rows of gone cgroups deleted, series that keep their deleted rows' totals
 * and end with their last row) is EndpointCounterTable's.
 */
import type { LoadedObject, ObjectNames } from '../bpf/object-names';
import { StructReader } from '../bpf/struct-reader';
import type { CgroupAttribution } from '../k8s/attribution';
import { EndpointCounterTable } from './endpoint-counters';
import type { DescribeRow } from './row-identity';
import { AttributesOf, type AttributeSource, type HistogramSeries } from './series';

/** Lower bound (in the kernel's unit) of quarter-octave bucket b. */
export function bucketLowerBound(b: number): number {
  return (4 + (b % 4)) * 2 ** (Math.floor(b / 4) - 2);
}

/** Kernel bucket bounds between `from` and `to` (kernel unit), every `everyNth` bucket, times `scale`. */
export function kernelBoundaries(from: number, to: number, scale: number, everyNth = 1): number[] {
  const out: number[] = [];
  for (let b = 0; bucketLowerBound(b) <= to; b++) {
    if (bucketLowerBound(b) >= from && b % everyNth === 0) out.push(bucketLowerBound(b) * scale);
  }
  return out;
}

/** `N`: the names of the object (generated from its BTF), which tsc checks the map and struct names against. */
export interface KernelHistogramOptions<N extends ObjectNames = ObjectNames> {
  object: LoadedObject<N>;
  mapName: N['maps'];
  keyStruct: N['structs'];
  keyFields?: readonly string[];
  describe?: DescribeRow;
  attribution: CgroupAttribution;
  /** For a per-CPU map; a shared one holds one value per row. */
  possibleCpus: number;
  /** Export boundaries, in the exported unit; each must be a kernel bound times `scale`. */
  boundaries: number[];
  /** Kernel unit to exported unit, e.g. 1e-6 for µs → s. */
  scale: number;
  gracePeriodMs: number;
  idleFlowEvictMs?: number;
  now?: () => number;
}

const HISTOGRAM_STRUCT = 'flowtel_histogram';

/**
 * A counter table whose counters are a histogram's: the sum and one per
 * kernel bucket. Rows, series, deleted rows and ended series are the counter
 * table's; this only turns each series' totals into export buckets.
 */
export class KernelHistogramTable<N extends ObjectNames = ObjectNames> {
  private readonly counters: EndpointCounterTable<string>;
  /** Kernel bucket b → the export bucket whose range holds [lower(b), lower(b+1)). */
  private readonly exportIndex: number[];

  constructor(private readonly options: KernelHistogramOptions<N>) {
    const object = options.object as LoadedObject<ObjectNames>;
    const buckets = new StructReader(HISTOGRAM_STRUCT, object.structLayout(HISTOGRAM_STRUCT), ['buckets']).member('buckets').size / 8;
    const bounds = options.boundaries.map((b) => b / options.scale);
    this.exportIndex = Array.from({ length: buckets }, (_, b) => bounds.filter((x) => x <= bucketLowerBound(b) * (1 + 1e-9)).length);
    this.counters = new EndpointCounterTable<string>({
      object,
      mapName: options.mapName,
      keyStruct: options.keyStruct,
      valueStruct: HISTOGRAM_STRUCT,
      fields: ['sum', ...Array.from({ length: buckets }, (_, b) => `buckets[${b}]`)],
      ...(options.keyFields ? { keyFields: options.keyFields } : {}),
      ...(options.describe ? { describe: options.describe } : {}),
      attribution: options.attribution,
      possibleCpus: options.possibleCpus,
      gracePeriodMs: options.gracePeriodMs,
      ...(options.idleFlowEvictMs !== undefined ? { idleFlowEvictMs: options.idleFlowEvictMs } : {}),
      ...(options.now ? { now: options.now } : {}),
    });
  }

  collect(): HistogramSeries[] {
    const { boundaries, scale } = this.options;
    const rows = this.counters.collect();
    const out: HistogramSeries[] = [];
    for (let r = 0; r < rows.length; r++) {
      const row = rows.at(r);
      const counts = new Array<number>(boundaries.length + 1).fill(0);
      let count = 0;
      for (let b = 0; b < this.exportIndex.length; b++) {
        const inBucket = row.total(1 + b);
        counts[this.exportIndex[b]] += inBucket;
        count += inBucket;
      }
      // The count is the buckets' sum, not the kernel's count member: the kernel adds to count, sum and a bucket
      // one after another and the map is read without a lock, so a copy can catch a value between them, and
      // OTLP requires count = Σ bucket counts. The sum may then be off by that one value.
      out.push(new RowHistogram(row, row.seriesKey, count, row.total(0) * scale, counts));
    }
    return out;
  }
}

/**
 * A histogram series of a counter-table series. Its attributes are the
 * series', built when read by the exporter, as for counter series.
 */
class RowHistogram extends AttributesOf<AttributeSource> implements HistogramSeries {
  constructor(
    source: AttributeSource,
    readonly key: string,
    readonly count: number,
    readonly sum: number,
    readonly counts: number[],
  ) {
    super(source);
  }
}
