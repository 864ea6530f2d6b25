/**
 * The contract of a probe group: a BPF object to load, and the mapping of
 * its maps and events onto OpenTelemetry instruments and log records through
 * the API only (a meter and a logger handed in).
 */
import type { Meter } from '@opentelemetry/api';
import type { Logger } from '@opentelemetry/api-logs';
import type { AgentLog } from '../agent/log';
import type { BpfRuntime, LoadedProbeObject, ProbeObjectSpec } from '../bpf/runtime';
import type { KernelClock } from '../bpf/clock';
import type { CgroupAttribution } from '../k8s/attribution';

export interface ProbeContext {
  meter: Meter;
  logger: Logger;
  attribution: CgroupAttribution;
  runtime: BpfRuntime;
  clock: KernelClock;
  log: AgentLog;
  /** How long a removed cgroup keeps its series before its kernel rows are deleted. */
  cgroupGracePeriodMs: number;
  /** How often kernel histograms are drained into the API histograms. */
  histogramDrainIntervalMs: number;
}

export interface ProbeGroup {
  readonly name: string;
  /** Kernel hooks the group needs; named in the warning when it cannot load. */
  readonly hooks: readonly string[];
  readonly objectSpec: ProbeObjectSpec;
  /** After load and attach: create instruments, register event handlers. */
  start(loaded: LoadedProbeObject, context: ProbeContext): void;
  /** Moves data that is exported by recording (kernel histograms) into the SDK; called before a final flush. */
  flush?(): void;
  /** Unregisters callbacks; the runtime detaches the programs. */
  stop(): void;
}
