/**
 * `flowtel doctor`: on this node, everything the agent needs, tried for real.
 * Node checks first; the probe groups only when the kernel and the privileges
 * allow loading anything; then the OTLP endpoint and the Kubernetes API.
 */
import os from 'node:os';
import type { KernelFacts } from '../bpf/hooks';
import { openJiffiesReader } from '../bpf/kernel-clock';
import { detectKernelHz } from '../bpf/kernel-hz';
import type { FlowtelConfig } from '../config/config';
import { PROBE_GROUPS } from '../probes/registry';
import { otlpCheck } from './export-check';
import { groupChecks } from './group-checks';
import { kubernetesChecks } from './kubernetes-check';
import { capabilitiesCheck, cgroupRootCheck, kernelCheck, tickRateCheck, tracefsCheck } from './node-checks';
import { exitCodeOf, type DoctorCheck, type DoctorReport } from './report';

export { formatTable, type DoctorReport } from './report';

export async function runDoctor(config: FlowtelConfig, version: string, kernel?: KernelFacts): Promise<DoctorReport> {
  const kernelHz = await detectKernelHz(() => openJiffiesReader(config.bpfObjectDir));
  const checks: DoctorCheck[] = [
    kernelCheck(),
    capabilitiesCheck(),
    cgroupRootCheck(config),
    tickRateCheck(
      kernelHz,
      PROBE_GROUPS.filter((g) => g.needsKernelHz).map((g) => g.name),
    ),
    tracefsCheck(),
  ];
  const blocked = checks.filter((c) => c.status === 'fatal');
  if (blocked.length) {
    for (const entry of PROBE_GROUPS) {
      checks.push({
        kind: 'group',
        name: entry.name,
        status: 'unavailable',
        detail: `not tried: ${blocked.map((c) => `${c.name} ${c.detail}`).join('; ')}`,
        impact: entry.withoutIt,
      });
    }
  } else {
    const groups = groupChecks(PROBE_GROUPS, config, { kernelHz, cgroupRoot: config.cgroupRoot }, kernel);
    checks.push(...groups);
    const enabled = groups.filter((g) => g.group?.state !== 'disabled');
    if (enabled.length > 0 && enabled.every((g) => g.status === 'unavailable')) {
      checks.push({ kind: 'group', name: 'probe groups', status: 'fatal', detail: 'no enabled probe group loads: the agent would exit' });
    }
  }
  checks.push(await otlpCheck(config, version));
  checks.push(...(await kubernetesChecks(config)));
  return { node: config.nodeName, kernel: os.release(), exitCode: exitCodeOf(checks), checks };
}
