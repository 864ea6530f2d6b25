/**
 * Loads the enabled probe groups one by one and records what became of each:
 * ok, degraded (running with a lesser program variant, named), unsupported
 * (this kernel lacks a hook, argument or kfunc, named with the kernel that
 * brought it), failed (the kernel should run it and did not: permission,
 * memory, a verifier refusal that is our bug) or disabled (by the config).
 * A group that does not run stops nothing else.
 */
import type { BpfRuntime, LoadedProbeObject } from '../bpf/runtime';
import { kernelFactsFrom, planHooks, type KernelFacts } from '../bpf/hooks';
import { describeLoadFailure } from '../bpf/load-failure';
import type { FlowtelConfig } from '../config/config';
import { ConfigError } from '../config/schema';
import type { NodeFacts, ProbeGroupEntry } from '../probes/catalog';
import type { ProbeContext, ProbeGroup } from '../probes/types';

export type GroupState = 'ok' | 'degraded' | 'unsupported' | 'failed' | 'disabled';

export interface GroupStatus {
  group: string;
  state: GroupState;
  /** Each degradation, or the cause the group does not run; empty when ok. */
  reasons: string[];
  /** The program variant loaded for each hook (ok and degraded). */
  programs: Array<{ hook: string; program: string }>;
  /** What the telemetry goes without while the group does not run. */
  withoutIt?: string;
}

export interface LoadedGroups {
  started: ProbeGroup[];
  statuses: GroupStatus[];
}

/** Loads each enabled group of `entries` and starts it; throws only a ConfigError (the operator's to fix). */
export function loadGroups(
  entries: readonly ProbeGroupEntry[],
  config: FlowtelConfig,
  runtime: BpfRuntime,
  context: ProbeContext,
  node: NodeFacts,
  kernel: KernelFacts = kernelFactsFrom(runtime.native),
): LoadedGroups {
  const started: ProbeGroup[] = [];
  const statuses: GroupStatus[] = [];
  for (const entry of entries) {
    const { group, status } = loadGroup(entry, config, runtime, node, kernel, (g, loaded) => g.start(loaded, context));
    if (group) started.push(group);
    statuses.push(status);
  }
  return { started, statuses };
}

/**
 * Plans, builds, loads and attaches one group, then hands it to `start`; a group that does not get that far
 * is unloaded and its status says why. Throws only a ConfigError.
 */
export function loadGroup(
  entry: ProbeGroupEntry,
  config: FlowtelConfig,
  runtime: BpfRuntime,
  node: NodeFacts,
  kernel: KernelFacts,
  start: (group: ProbeGroup, loaded: LoadedProbeObject) => void,
): { group?: ProbeGroup; status: GroupStatus } {
  const stopped = (state: GroupState, reasons: string[]): { status: GroupStatus } => ({
    status: { group: entry.name, state, reasons, programs: [], withoutIt: entry.withoutIt },
  });
  if (!entry.enabled(config)) return stopped('disabled', ['disabled in the config']);
  const plan = planHooks(entry.hooks, kernel);
  if (!plan.supported) return stopped('unsupported', [plan.reason]);
  let group: ProbeGroup | undefined;
  try {
    group = entry.build(config, node);
    start(group, runtime.load(group.objectSpec, plan.programs));
    const reasons = [...plan.degradations, ...(group.configDegradations ?? [])];
    return {
      group,
      status: {
        group: entry.name,
        state: reasons.length ? 'degraded' : 'ok',
        reasons,
        programs: plan.programs.map(({ hook, variant }) => ({ hook: hook.hook, program: variant.program })),
      },
    };
  } catch (err) {
    // A group may have registered its series before failing: they would read an unloaded object.
    group?.stop();
    runtime.unload(entry.name);
    if (err instanceof ConfigError) throw err;
    const failure = describeLoadFailure(err);
    return stopped(failure.state, [failure.reason]);
  }
}

/** The start-up log line of a group that is not ok, or undefined. */
export function statusLogLine(status: GroupStatus): string | undefined {
  switch (status.state) {
    case 'ok':
    case 'disabled':
      return undefined;
    case 'degraded':
      return `probe group ${status.group} runs degraded: ${status.reasons.join('; ')}`;
    case 'unsupported':
      return `probe group ${status.group} disabled: this kernel cannot run it: ${status.reasons.join('; ')}; ${status.withoutIt}`;
    case 'failed':
      return `probe group ${status.group} disabled: ${status.reasons.join('; ')}; ${status.withoutIt}`;
  }
}
