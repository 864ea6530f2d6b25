/**
 * Kernel histograms (struct flowtel_histogram: quarter-octave buckets of µs
 * values) into OpenTelemetry explicit-bucket histograms in seconds.
 *
 * The OpenTelemetry JS API has no asynchronous histogram, so each drain
 * records the samples the kernel added since the last drain into an API
 * Histogram: one record per new sample, at its bucket's geometric midpoint.
 * The exported boundaries are kernel bucket bounds, so every sample lands in
 * the exported bucket the kernel put it in; only the exported sum is an
 * estimate (within a quarter octave). Samples are bounded by the kernel-side
 * sampling, so the record loop stays small.
 */
import type { Attributes, Histogram, Meter } from '@opentelemetry/api';
import type { NativeBpfObject } from '../../bpf/native';
import { StructReader } from '../../bpf/struct-reader';
import type { CgroupAttribution } from '../../k8s/attribution';
import type { MetricName } from '../../semconv';
import { GoneRows, RowIdentityReader, type DescribeRow } from './row-identity';

/** Lower bound (in the kernel's unit) of quarter-octave bucket b. */
export function bucketLowerBound(b: number): number {
  return (4 + (b % 4)) * 2 ** (Math.floor(b / 4) - 2);
}

/** Every kernel bucket bound between `from` and `to` (kernel unit), times `scale`. */
export function kernelBoundaries(from: number, to: number, scale: number, everyNth = 1): number[] {
  const out: number[] = [];
  for (let b = 0; bucketLowerBound(b) <= to; b++) {
    if (bucketLowerBound(b) >= from && b % everyNth === 0) out.push(bucketLowerBound(b) * scale);
  }
  return out;
}

export function createKernelHistogram(meter: Meter, metric: MetricName, boundaries: number[]): Histogram {
  return meter.createHistogram(metric.name, {
    unit: metric.unit,
    description: metric.description,
    advice: { explicitBucketBoundaries: boundaries },
  });
}

export interface KernelHistogramOptions {
  object: NativeBpfObject;
  mapName: string;
  keyStruct: string;
  keyFields?: readonly string[];
  describe?: DescribeRow;
  attribution: CgroupAttribution;
  histogram: Histogram;
  /** Kernel unit to exported unit, e.g. 1e-6 for µs → s. */
  scale: number;
  /** Rows of cgroups/netns gone this long are deleted from the kernel map. */
  gracePeriodMs: number;
  now?: () => number;
}

export class KernelHistogramDrain {
  private readonly rows: RowIdentityReader;
  private readonly gone: GoneRows;
  private readonly value: StructReader<'count' | 'buckets'>;
  private readonly bucketCount: number;
  private readonly last = new Map<string, Float64Array>();
  private readonly midpoints: number[];

  constructor(private readonly options: KernelHistogramOptions) {
    this.rows = new RowIdentityReader(options.object, options.keyStruct, options.keyFields, options.attribution, options.describe);
    this.gone = new GoneRows(options.attribution, options.gracePeriodMs);
    this.value = new StructReader('flowtel_histogram', options.object.structLayout('flowtel_histogram'), ['count', 'buckets']);
    this.bucketCount = this.value.member('buckets').size / 8;
    this.midpoints = Array.from({ length: this.bucketCount }, (_, b) => Math.sqrt(bucketLowerBound(b) * bucketLowerBound(b + 1)) * options.scale);
  }

  /** Records what the kernel counted since the last drain; returns the number of samples recorded. */
  drain(): number {
    const { object, mapName, histogram } = this.options;
    const rows = object.mapReadAll(mapName);
    const bucketsOffset = this.value.member('buckets').offset;
    const seen = new Set<string>();
    const expired: Buffer[] = [];
    const now = (this.options.now ?? Date.now)();
    let recorded = 0;
    for (let i = 0; i < rows.count; i++) {
      const keyOffset = i * rows.keySize;
      const rowId = rows.keys.toString('hex', keyOffset, keyOffset + rows.keySize);
      seen.add(rowId);
      const valueOffset = i * rows.valueStride;
      const current = new Float64Array(this.bucketCount);
      for (let b = 0; b < this.bucketCount; b++) current[b] = Number(rows.values.readBigUInt64LE(valueOffset + bucketsOffset + b * 8));
      const previous = this.last.get(rowId);
      this.last.set(rowId, current);
      const identity = this.rows.read(rows.keys, keyOffset);
      for (let b = 0; identity && b < this.bucketCount; b++) {
        const delta = current[b] - (previous ? previous[b] : 0);
        if (delta <= 0) continue;
        const attributes: Attributes = identity.attributes;
        for (let n = 0; n < delta; n++) histogram.record(this.midpoints[b], attributes);
        recorded += delta;
      }
      const ref = this.rows.ref(rows.keys, keyOffset);
      if (this.gone.expired(rowId, ref, identity?.endpoint ?? this.options.attribution.resolveRef(ref), now)) {
        expired.push(rows.keys.subarray(keyOffset, keyOffset + rows.keySize));
        this.last.delete(rowId);
        this.options.attribution.forgetRef(ref);
      }
    }
    for (const rowId of this.last.keys()) if (!seen.has(rowId)) this.last.delete(rowId);
    if (expired.length) object.mapDeleteKeys(mapName, Buffer.concat(expired));
    return recorded;
  }
}
