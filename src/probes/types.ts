/**
 * The contract of a probe group: a BPF object to load, its kernel-map series
 * published through a SeriesRegistry (src/tables/series: exported by every reader,
 * series end when their pod or flow does), and its events, which become
 * log records through the OpenTelemetry logs API (ProbeContext.events).
 * Everything a group registers goes through its context, whose scope undoes
 * it when the group unloads: a group has no stop() of its own.
 */
import type { AgentLog } from '../util/log';
import type { HookSpec } from '../bpf/hooks';
import type { ObjectNames } from '../bpf/object-names';
import type { BpfRuntime, EventHandler, LoadedProbeObject, ProbeObjectSpec } from '../bpf/runtime';
import type { CgroupAttribution } from '../k8s/attribution';
import type { SeriesRegistry } from '../tables/series';
import type { EventSink } from '../events/event-aggregator';

/** What the agent shares with every group. */
export interface SharedProbeContext {
  /** Where events go to become log records (repeats folded, see src/events/event-aggregator). */
  events: EventSink;
  attribution: CgroupAttribution;
  runtime: BpfRuntime;
  log: AgentLog;
  /** How long a removed cgroup keeps its series before its kernel rows are deleted. */
  cgroupGracePeriodMs: number;
  /** Where kernel-map series are published (see src/tables/series). */
  series: SeriesRegistry;
}

/** How long the rows of a group's kernel tables live; spread into every table's options. */
export interface RowLifetime {
  /** How long a removed cgroup keeps its series before its kernel rows are deleted. */
  gracePeriodMs: number;
  /** At flow granularity: a peer's row unchanged this long is deleted and its series ends; absent at pod granularity. */
  idleFlowEvictMs?: number;
}

/** One group's view: registrations here last until the group unloads. */
export interface ProbeContext {
  events: EventSink;
  attribution: CgroupAttribution;
  /** What a group reads of the runtime; handlers go through onEvent. */
  runtime: Pick<BpfRuntime, 'native' | 'possibleCpus'>;
  log: AgentLog;
  rowLifetime: RowLifetime;
  /** Registers a source of series, unregistered when the group unloads. */
  series: SeriesRegistry;
  /** Handles the events of one kind until the group unloads. */
  onEvent(kind: number, handler: EventHandler): void;
  /** Anything else to undo when the group unloads (a timer, a cache). */
  onUnload(undo: () => void): void;
}

/** `N`: the names of the group's BPF object (src/bpf/objects.generated.ts). */
export interface ProbeGroup<N extends ObjectNames = ObjectNames> {
  readonly name: string;
  /** Kernel hooks the group needs, each with its program variants (src/bpf/hooks.ts). */
  readonly hooks: readonly HookSpec<N['programs']>[];
  readonly objectSpec: ProbeObjectSpec<N>;
  /** What the group does not count on this kernel because of its config (a filter of names the kernel lacks). */
  readonly configDegradations?: readonly string[];
  /** After load and attach: create instruments, register event handlers, all through `context`. */
  start(loaded: LoadedProbeObject<N>, context: ProbeContext): void;
}
