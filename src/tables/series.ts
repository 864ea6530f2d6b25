/**
 * How probe groups publish metrics that come from kernel maps: a snapshot
 * of the series that exist now, with their running totals. A series that is
 * not in a snapshot has ended (its pod is gone, its flow was evicted) and is
 * no longer exported, which the OpenTelemetry JS SDK cannot do for
 * instruments under cumulative temporality (it re-exports every attribute set
 * it ever saw, so a node with pod churn would grow without bound). The SDK
 * wiring in src/exporters turns snapshots into OTLP data; groups depend on
 * this interface only.
 */
import type { Attributes, HrTime } from '@opentelemetry/api';
import type { MetricName } from '../semconv';

/**
 * A series' attributes as parts to merge in order (a later part's key wins),
 * for series whose attributes are mostly shared: a flow's pod, its peer's
 * identity, its direction. A part that is frozen is shared and never
 * changes, so an exporter may encode it once for every series that has it.
 */
export interface AttributeParts {
  attributeParts?(): readonly Attributes[];
}

export type AttributeSource = { readonly attributes: Attributes } & AttributeParts;

/**
 * Attributes read through to a source (a row identity) on every read, never
 * kept: at 100,000 flows an attribute object per series would be tens of MB.
 * A source without parts is its attributes as the one part.
 */
export class AttributesOf<S extends AttributeSource> implements AttributeParts {
  constructor(public source: S) {}

  get attributes(): Attributes {
    return this.source.attributes;
  }

  attributeParts(): readonly Attributes[] {
    return this.source.attributeParts?.() ?? [this.source.attributes];
  }
}

export interface NumberSeries extends AttributeParts {
  /** Stable identity of the series (its attributes in a form cheap to compare). */
  key: string;
  attributes: Attributes;
  value: number;
  /**
   * When the series began accumulating, for sources that track it themselves
   * (saves the exporter a lookup per series); otherwise the exporter takes
   * the first collection that had the key.
   */
  startTime?: HrTime;
}

/**
 * Series made one at a time, on demand: a source with 100,000 flow rows
 * must not create an object per row and metric at every collection, only
 * while an exporter reads them (in chunks). Each carries its start time.
 */
export interface SeriesList {
  readonly length: number;
  at(index: number): NumberSeries & { startTime: HrTime };
}

export interface HistogramSeries extends AttributeParts {
  key: string;
  attributes: Attributes;
  count: number;
  sum: number;
  /** One count per bucket: boundaries.length + 1. */
  counts: number[];
}

export interface SeriesSnapshot {
  /** Running totals: monotonic for counters, not for up/down counts (live connections). */
  sums?: Array<{ metric: MetricName; monotonic: boolean; series: NumberSeries[] | SeriesList }>;
  histograms?: Array<{ metric: MetricName; boundaries: number[]; series: HistogramSeries[] }>;
}

export interface SeriesRegistry {
  /** Registers a source read at every collection; returns the function that unregisters it. */
  register(collect: () => SeriesSnapshot): () => void;
}
