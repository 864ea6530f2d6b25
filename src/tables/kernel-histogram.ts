/**
 * Kernel histograms (struct flowtel_histogram: quarter-octave buckets of µs
 * values, a count and an exact sum) as explicit-bucket histogram series.
 *
 * Export boundaries are a subset of the kernel's bucket bounds, so each
 * kernel bucket falls wholly into one export bucket: counts are exact, and
 * the sum is the kernel's own. Rows sharing a series are added up; rows of
 * cgroups/netns gone for the grace period are deleted from the kernel map.
 * As in EndpointCounterTable, a series keeps the totals of its deleted rows
 * while another of its rows lives (a pod's other containers, the node's other
 * cgroups), so it never goes backwards, and ends with its last row; the
 * node's (or unknown) series at pod granularity never ends.
 */
import { MapRowsReader } from '../bpf/map-rows-reader';
import type { LoadedObject, ObjectNames } from '../bpf/object-names';
import { readU64, StructReader } from '../bpf/struct-reader';
import type { CgroupAttribution } from '../k8s/attribution';
import { AttributesOf, type AttributeSource, type HistogramSeries } from './series';
import { GoneRows, RowIdentityReader, type DescribeRow } from './row-identity';

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
  /** Export boundaries, in the exported unit; each must be a kernel bound times `scale`. */
  boundaries: number[];
  /** Kernel unit to exported unit, e.g. 1e-6 for µs → s. */
  scale: number;
  gracePeriodMs: number;
  now?: () => number;
}

export class KernelHistogramTable<N extends ObjectNames = ObjectNames> {
  private readonly rows: RowIdentityReader;
  private readonly reader: MapRowsReader;
  private readonly gone: GoneRows;
  private readonly value: StructReader<'count' | 'sum' | 'buckets'>;
  private readonly exportIndex: number[];
  /** Totals of deleted rows by series; `forever`: the node's (or unknown) series at pod granularity. */
  private readonly retired = new Map<string, { series: HistogramSeries; forever: boolean }>();

  constructor(private readonly options: KernelHistogramOptions<N>) {
    this.rows = new RowIdentityReader(options.object, options.keyStruct, options.keyFields, options.attribution, options.describe);
    this.reader = new MapRowsReader(options.object, options.mapName);
    this.gone = new GoneRows(options.attribution, options.gracePeriodMs);
    this.value = new StructReader('flowtel_histogram', options.object.structLayout('flowtel_histogram'), ['count', 'sum', 'buckets']);
    const kernelBuckets = this.value.member('buckets').size / 8;
    // Kernel bucket b → the export bucket whose range holds [lower(b), lower(b+1)).
    const bounds = options.boundaries.map((b) => b / options.scale);
    this.exportIndex = Array.from({ length: kernelBuckets }, (_, b) => bounds.filter((x) => x <= bucketLowerBound(b) * (1 + 1e-9)).length);
  }

  collect(): HistogramSeries[] {
    const { object, mapName, boundaries, scale } = this.options;
    const bucketsOffset = this.value.member('buckets').offset;
    const series = new Map<string, HistogramSeries>();
    for (const [key, kept] of this.retired) series.set(key, copyOf(kept.series));
    const live = new Set<string>();
    const expired: Buffer[] = [];
    const now = (this.options.now ?? Date.now)();
    this.gone.begin();
    this.rows.begin();
    this.reader.forEach((rows, first) => {
      for (let i = 0; i < rows.count; i++) {
        const keyOffset = i * rows.keySize;
        const identity = this.rows.read(rows.keys, keyOffset, first + i);
        if (!identity) continue;
        const base = i * rows.valueStride;
        const row = new RowHistogram(
          identity,
          identity.seriesKey,
          this.value.uint(rows.values, base, 'count'),
          this.value.uint(rows.values, base, 'sum') * scale,
          new Array<number>(boundaries.length + 1).fill(0),
        );
        for (let b = 0; b < this.exportIndex.length; b++) {
          const n = readU64(rows.values, base + bucketsOffset + b * 8);
          if (n) row.counts[this.exportIndex[b]] += n;
        }
        if (!this.gone.expired(identity.ref, identity.endpoint, now)) {
          live.add(identity.seriesKey);
        } else {
          // A copy: the next batch overwrites the Buffer.
          expired.push(Buffer.from(rows.keys.subarray(keyOffset, keyOffset + rows.keySize)));
          this.options.attribution.forgetRef(identity.ref);
          const kept = this.retired.get(identity.seriesKey);
          if (kept) addTo(kept.series, row);
          else this.retired.set(identity.seriesKey, { series: copyOf(row), forever: identity.endpoint.kind !== 'pod' && !identity.flow });
        }
        addInto(series, row);
      }
    });
    this.gone.end();
    this.rows.end();
    if (expired.length) object.mapDeleteKeys(mapName, Buffer.concat(expired));
    // A series ends when its last row is deleted (a pod's, a flow's): exported with its final totals this once.
    for (const [key, kept] of this.retired) if (!kept.forever && !live.has(key)) this.retired.delete(key);
    return [...series.values()];
  }
}

/** Adds a row into its series; the first row of a series becomes it (rows are fresh objects, owned by no one). */
function addInto(into: Map<string, HistogramSeries>, row: HistogramSeries): void {
  const sum = into.get(row.key);
  if (sum) addTo(sum, row);
  else into.set(row.key, row);
}

function addTo(sum: HistogramSeries, row: HistogramSeries): void {
  sum.count += row.count;
  sum.sum += row.sum;
  for (let i = 0; i < row.counts.length; i++) sum.counts[i] += row.counts[i];
}

/**
 * A histogram series of kernel rows. Its attributes are its source's (a row
 * identity), built when read by the exporter, as for counter rows.
 */
class RowHistogram extends AttributesOf<AttributeSource> implements HistogramSeries {
  constructor(
    source: AttributeSource,
    readonly key: string,
    public count: number,
    public sum: number,
    readonly counts: number[],
  ) {
    super(source);
  }
}

function copyOf(series: HistogramSeries): HistogramSeries {
  return new RowHistogram(series, series.key, series.count, series.sum, [...series.counts]);
}
