/**
 * The contract of a probe group: a BPF object to load, its kernel-map series
 * published through a SeriesRegistry (./series: exported by every reader,
 * series end when their pod or flow does), and its events as log records
 * through the OpenTelemetry logs API (a logger handed in).
 */
import type { Logger } from '@opentelemetry/api-logs';
import type { AgentLog } from '../agent/log';
import type { BpfRuntime, LoadedProbeObject, ProbeObjectSpec } from '../bpf/runtime';
import type { KernelClock } from '../bpf/clock';
import type { CgroupAttribution } from '../k8s/attribution';
import type { SeriesRegistry } from './series';

export interface ProbeContext {
  logger: Logger;
  attribution: CgroupAttribution;
  runtime: BpfRuntime;
  clock: KernelClock;
  log: AgentLog;
  /** How long a removed cgroup keeps its series before its kernel rows are deleted. */
  cgroupGracePeriodMs: number;
  /** Where kernel-map series are published (see ./series). */
  series: SeriesRegistry;
}

export interface ProbeGroup {
  readonly name: string;
  /** Kernel hooks the group needs; named in the warning when it cannot load. */
  readonly hooks: readonly string[];
  readonly objectSpec: ProbeObjectSpec;
  /** After load and attach: create instruments, register event handlers. */
  start(loaded: LoadedProbeObject, context: ProbeContext): void;
  /** Unregisters callbacks; the runtime detaches the programs. */
  stop(): void;
}
