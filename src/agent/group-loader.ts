/**
 * Loads the enabled probe groups one by one and records what became of each:
 * ok, degraded (running with a lesser program variant, named), unsupported
 * (this kernel lacks a hook, argument or kfunc, named with the kernel that
 * brought it), failed (the kernel should run it and did not: permission,
 * memory, a verifier refusal that is our bug) or disabled (by the config).
 * A group that does not run stops nothing else.
 */
import type { BpfRuntime } from '../bpf/runtime';
import { kernelFactsFrom, planHooks, type KernelFacts } from '../bpf/hooks';
import { describeLoadFailure } from '../bpf/load-failure';
import type { FlowtelConfig } from '../config/config';
import { ConfigError } from '../config/schema';
import type { NodeFacts, ProbeGroupEntry } from '../probes/declaration';
import { GroupScope } from '../probes/scope';
import type { ProbeContext, ProbeGroup, SharedProbeContext } from '../probes/types';
import type { CommonProbeConfig } from '../probes/config';

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

/** A group that runs, and the one way to stop it. */
export interface RunningGroup {
  readonly group: ProbeGroup;
  /** Undoes everything the group registered, then detaches its programs and closes its object. Idempotent. */
  unload(): void;
}

export interface LoadedGroups {
  started: RunningGroup[];
  statuses: GroupStatus[];
}

/** Loads each enabled group of `entries` and starts it; throws only a ConfigError (the operator's to fix). */
export function loadGroups(
  entries: readonly ProbeGroupEntry[],
  config: FlowtelConfig,
  shared: SharedProbeContext,
  node: NodeFacts,
  kernel: KernelFacts = kernelFactsFrom(shared.runtime.native),
): LoadedGroups {
  const started: RunningGroup[] = [];
  const statuses: GroupStatus[] = [];
  for (const entry of entries) {
    const { running, status } = loadGroup(entry, config, shared.runtime, node, kernel, shared);
    if (running) started.push(running);
    statuses.push(status);
  }
  return { started, statuses };
}

/**
 * Plans, builds, loads and attaches one group, then starts it with a context of its own (none: a trial load,
 * unloaded at once); a group that does not get that far is unloaded and its status says why. Throws only a
 * ConfigError.
 */
export function loadGroup(
  entry: ProbeGroupEntry,
  config: FlowtelConfig,
  runtime: BpfRuntime,
  node: NodeFacts,
  kernel: KernelFacts,
  shared?: SharedProbeContext,
): { running?: RunningGroup; status: GroupStatus } {
  const stopped = (state: GroupState, reasons: string[]): { status: GroupStatus } => ({
    status: { group: entry.name, state, reasons, programs: [], withoutIt: entry.withoutIt },
  });
  if (!entry.enabled(config.probes)) return stopped('disabled', ['disabled in the config']);
  const plan = planHooks(entry.hooks, kernel);
  if (!plan.supported) return stopped('unsupported', [plan.reason]);
  const scope = new GroupScope(entry.name);
  let unloaded = false;
  const unload = (): void => {
    if (unloaded) return;
    unloaded = true;
    try {
      scope.dispose();
    } finally {
      runtime.unload(entry.name);
    }
  };
  try {
    const group = entry.build(config.probes, node);
    // The runtime keys a loaded object by the spec's group: it must be the registry's name for unload to find it.
    if (group.objectSpec.group !== entry.name) throw new Error(`internal: probe group ${entry.name} built a spec named ${group.objectSpec.group}`);
    const loaded = runtime.load(group.objectSpec, plan.programs);
    if (shared) group.start(loaded, scopedContext(shared, scope, entry.configOf(config.probes)));
    else unload();
    const reasons = [...plan.degradations, ...(group.configDegradations ?? [])];
    return {
      ...(shared ? { running: { group, unload } } : {}),
      status: {
        group: entry.name,
        state: reasons.length ? 'degraded' : 'ok',
        reasons,
        programs: plan.programs.flatMap(({ hook, variant }) => (variant.program === null ? [] : [{ hook: hook.hook, program: variant.program }])),
      },
    };
  } catch (err) {
    // A group may have registered its series before failing: they would read an unloaded object.
    try {
      unload();
    } catch {
      // The load failure is the one to report; the object is closed either way (unload's finally).
    }
    if (err instanceof ConfigError) throw err;
    const failure = describeLoadFailure(err);
    return stopped(failure.state, [failure.reason]);
  }
}

/** The context of one group: the shared one, with every registration kept in the group's scope. */
function scopedContext(shared: SharedProbeContext, scope: GroupScope, own: CommonProbeConfig): ProbeContext {
  return {
    events: shared.events,
    attribution: shared.attribution,
    runtime: shared.runtime,
    log: shared.log,
    rowLifetime: {
      gracePeriodMs: shared.cgroupGracePeriodMs,
      ...(own.granularity === 'flow' ? { idleFlowEvictMs: own.idleFlowTimeoutMs } : {}),
    },
    series: {
      register(collect) {
        const undo = shared.series.register(collect);
        scope.add(undo);
        return undo;
      },
    },
    onEvent: (kind, handler) => scope.add(shared.runtime.onEvent(kind, handler)),
    onUnload: (undo) => scope.add(undo),
  };
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
