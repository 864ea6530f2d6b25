/**
 * Each probe group tried for real on this node: planned from the kernel's BTF,
 * built from the config, loaded and attached (cgroup_skb at the cgroup root
 * too), then detached and unloaded. A row says ok only when all of that
 * worked, never because a feature probe said the hook type exists.
 */
import { loadGroup, type GroupStatus } from '../agent/group-loader';
import { kernelFactsFrom, type KernelFacts } from '../bpf/hooks';
import { BpfRuntime } from '../bpf/runtime';
import type { FlowtelConfig } from '../config/config';
import type { NodeFacts, ProbeGroupEntry } from '../probes/declaration';
import type { CheckStatus, DoctorCheck } from './report';

export function groupChecks(entries: readonly ProbeGroupEntry[], config: FlowtelConfig, node: NodeFacts, kernel?: KernelFacts): DoctorCheck[] {
  // A small ring and small maps: nothing is counted, and doctor may run in the agent's own pod, whose memory
  // limit already holds the agent's full-size maps.
  const runtime = new BpfRuntime({ objectDir: config.bpfObjectDir, ringBufferBytes: 1 << 16, maxQueuedBatches: 1 });
  const facts = kernel ?? kernelFactsFrom(runtime.native);
  try {
    return entries.map((entry) => {
      const small = { ...config, probes: entry.withTrialConfig(config.probes, DOCTOR_MAP_ROWS) };
      return groupCheck(loadGroup(entry, small, runtime, node, facts).status);
    });
  } finally {
    runtime.close();
  }
}

const DOCTOR_MAP_ROWS = 64;

const STATUS_OF: Record<GroupStatus['state'], CheckStatus> = {
  ok: 'ok',
  degraded: 'degraded',
  unsupported: 'unavailable',
  failed: 'unavailable',
  disabled: 'info',
};

export function groupCheck(status: GroupStatus): DoctorCheck {
  const programs = status.programs.map((p) => p.program).join(', ');
  const detail =
    status.state === 'ok'
      ? `loads and attaches (${programs})`
      : status.state === 'degraded'
        ? `loads and attaches with less (${programs}): ${status.reasons.join('; ')}`
        : status.state === 'disabled'
          ? 'disabled in the config'
          : `${status.state === 'unsupported' ? 'not supported by this kernel' : 'does not load'}: ${status.reasons.join('; ')}`;
  return {
    kind: 'group',
    name: status.group,
    status: STATUS_OF[status.state],
    detail,
    ...(status.state === 'unsupported' || status.state === 'failed' ? { impact: status.withoutIt } : {}),
    group: { state: status.state, programs: status.programs, reasons: status.reasons },
  };
}
