/**
 * The agent's own health: events received, lost (by reason), suppressed
 * by the rate limit, and folded into summary log records. Lost events are never silent: every place that can drop
 * one counts it, and the counts are exported with the rest. Its memory too (resident set, V8 heap by space,
 * Buffers outside the heap): an agent on every node is judged by what it costs.
 */
import v8 from 'node:v8';
import type { BatchObservableResult, Meter } from '@opentelemetry/api';
import type { BpfRuntime } from '../bpf/runtime';
import type { GroupStatus } from './group-loader';
import type { ExportTotals } from '../exporters/export-watch';
import { observableCounter, observableGauge, observableUpDownCounter } from '../semconv/instruments';
import {
  ATTR_FLOWTEL_BPF_MAP,
  ATTR_FLOWTEL_BPF_PROGRAM,
  ATTR_FLOWTEL_EXPORT_OUTCOME,
  ATTR_FLOWTEL_SIGNAL,
  ATTR_FLOWTEL_LOSS_REASON,
  ATTR_FLOWTEL_PROBE_GROUP,
  ATTR_FLOWTEL_PROBE_GROUP_REASON,
  ATTR_FLOWTEL_PROBE_GROUP_STATE,
  ATTR_V8JS_HEAP_SPACE_NAME,
  LOSS_MAP_FULL,
  LOSS_PROGRAM_SKIPPED,
  LOSS_QUEUE_FULL,
  LOSS_LOG_EXPORT_FAILED,
  LOSS_LOG_QUEUE_FULL,
  LOSS_UNHANDLED,
  LOSS_RING_BUFFER_FULL,
  METRIC_AGENT_BPF_MAP_MEMORY,
  METRIC_AGENT_COLLECTION_DURATION,
  METRIC_AGENT_EVENTS_AGGREGATED,
  METRIC_AGENT_EVENTS_LOST,
  METRIC_AGENT_EVENTS_RECEIVED,
  METRIC_AGENT_EVENTS_SUPPRESSED,
  METRIC_AGENT_EXPORT_REJECTED,
  METRIC_AGENT_EXPORTS,
  METRIC_AGENT_MEMORY_EXTERNAL,
  METRIC_AGENT_NETNS_UNREADABLE,
  METRIC_AGENT_METRIC_EXPORTS_SKIPPED,
  METRIC_AGENT_PROBE_GROUPS,
  METRIC_PROCESS_MEMORY_USAGE,
  METRIC_V8JS_HEAP_USED,
} from '../semconv';

/** What the export pipeline reports about itself. */
export interface PipelineStats {
  lastCollectionSeconds(): number;
  skippedMetricExports(): number;
  logLosses(): { queueFull: number; exportFailed: number };
  /** Each OTLP signal's export totals (../exporters/export-watch). */
  readonly exportWatches: ReadonlyArray<{ readonly signal: string; readonly totals: Readonly<ExportTotals> }>;
}

/** What the event aggregator reports (src/events/event-aggregator). */
export interface AggregationStats {
  readonly folded: number;
}

export function registerSelfMetrics(
  meter: Meter,
  runtime: BpfRuntime,
  pipeline: PipelineStats,
  events: AggregationStats,
  groups: readonly GroupStatus[] = [],
  netns?: { readonly unreadableProcesses: number },
): () => void {
  const probeGroups = observableGauge(meter, METRIC_AGENT_PROBE_GROUPS);
  const collection = observableGauge(meter, METRIC_AGENT_COLLECTION_DURATION);
  const received = observableCounter(meter, METRIC_AGENT_EVENTS_RECEIVED);
  const lost = observableCounter(meter, METRIC_AGENT_EVENTS_LOST);
  const suppressed = observableCounter(meter, METRIC_AGENT_EVENTS_SUPPRESSED);
  const skipped = observableCounter(meter, METRIC_AGENT_METRIC_EXPORTS_SKIPPED);
  const aggregated = observableCounter(meter, METRIC_AGENT_EVENTS_AGGREGATED);
  const exports = observableCounter(meter, METRIC_AGENT_EXPORTS);
  const rejected = observableCounter(meter, METRIC_AGENT_EXPORT_REJECTED);
  const rss = observableUpDownCounter(meter, METRIC_PROCESS_MEMORY_USAGE);
  const heapUsed = observableUpDownCounter(meter, METRIC_V8JS_HEAP_USED);
  const external = observableUpDownCounter(meter, METRIC_AGENT_MEMORY_EXTERNAL);
  const unreadableNetns = observableGauge(meter, METRIC_AGENT_NETNS_UNREADABLE);
  const mapMemory = observableUpDownCounter(meter, METRIC_AGENT_BPF_MAP_MEMORY);
  const callback = (observer: BatchObservableResult): void => {
    const losses = runtime.readLosses();
    const ring = runtime.ringStats();
    observer.observe(received, ring?.deliveredRecords ?? 0);
    observer.observe(lost, losses.ringBufferFull, { [ATTR_FLOWTEL_LOSS_REASON]: LOSS_RING_BUFFER_FULL });
    observer.observe(lost, losses.mapFull, { [ATTR_FLOWTEL_LOSS_REASON]: LOSS_MAP_FULL });
    observer.observe(lost, ring?.droppedRecords ?? 0, { [ATTR_FLOWTEL_LOSS_REASON]: LOSS_QUEUE_FULL });
    observer.observe(lost, runtime.unhandledEvents, { [ATTR_FLOWTEL_LOSS_REASON]: LOSS_UNHANDLED });
    const logs = pipeline.logLosses();
    observer.observe(lost, logs.queueFull, { [ATTR_FLOWTEL_LOSS_REASON]: LOSS_LOG_QUEUE_FULL });
    observer.observe(lost, logs.exportFailed, { [ATTR_FLOWTEL_LOSS_REASON]: LOSS_LOG_EXPORT_FAILED });
    // One series per program: which program was skipped says which counts fell short.
    for (const [program, misses] of runtime.readRecursionMisses()) {
      observer.observe(lost, misses, { [ATTR_FLOWTEL_LOSS_REASON]: LOSS_PROGRAM_SKIPPED, [ATTR_FLOWTEL_BPF_PROGRAM]: program });
    }
    observer.observe(suppressed, losses.rateLimited);
    for (const group of groups) {
      observer.observe(probeGroups, 1, {
        [ATTR_FLOWTEL_PROBE_GROUP]: group.group,
        [ATTR_FLOWTEL_PROBE_GROUP_STATE]: group.state,
        ...(group.reasons.length ? { [ATTR_FLOWTEL_PROBE_GROUP_REASON]: group.reasons.join('; ') } : {}),
      });
    }
    observer.observe(collection, pipeline.lastCollectionSeconds());
    observer.observe(skipped, pipeline.skippedMetricExports());
    observer.observe(aggregated, events.folded);
    for (const { signal, totals } of pipeline.exportWatches) {
      observer.observe(exports, totals.succeeded, { [ATTR_FLOWTEL_SIGNAL]: signal, [ATTR_FLOWTEL_EXPORT_OUTCOME]: 'success' });
      observer.observe(exports, totals.failed, { [ATTR_FLOWTEL_SIGNAL]: signal, [ATTR_FLOWTEL_EXPORT_OUTCOME]: 'failure' });
      observer.observe(rejected, totals.itemsRejected, { [ATTR_FLOWTEL_SIGNAL]: signal });
    }
    if (netns) observer.observe(unreadableNetns, netns.unreadableProcesses);
    const memory = process.memoryUsage();
    observer.observe(rss, memory.rss);
    observer.observe(external, memory.external);
    for (const space of v8.getHeapSpaceStatistics()) observer.observe(heapUsed, space.space_used_size, { [ATTR_V8JS_HEAP_SPACE_NAME]: space.space_name });
    for (const { group, map, bytes } of runtime.mapMemory()) {
      observer.observe(mapMemory, bytes, { [ATTR_FLOWTEL_BPF_MAP]: map, ...(group ? { [ATTR_FLOWTEL_PROBE_GROUP]: group } : {}) });
    }
  };
  const observables = [
    probeGroups,
    received,
    lost,
    suppressed,
    collection,
    skipped,
    aggregated,
    exports,
    rejected,
    rss,
    heapUsed,
    external,
    unreadableNetns,
    mapMemory,
  ];
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}
