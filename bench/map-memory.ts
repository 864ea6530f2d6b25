/**
 * Kernel memory of the agent's BPF maps: every group this kernel can run,
 * loaded with the default config (pod and flow granularity), each map as the
 * kernel states it (fdinfo memlock, what the agent exports as
 * flowtel.agent.bpf.map.memory), and projected to nodes with more possible
 * CPUs. That memory is charged to the agent's pod (5.11+) but is not in its
 * resident set, so the chart's memory limit must hold both.
 */
import { HZ_MAX } from '../src/bpf/kernel-hz';
import { kernelFactsFrom, planHooks } from '../src/bpf/hooks';
import { projectedBytes, type MapMemory } from '../src/bpf/map-memory';
import { BpfRuntime } from '../src/bpf/runtime';
import { defaultConfig, type FlowtelConfig } from '../src/config/config';
import { PROBE_GROUPS } from '../src/probes/registry';
import { cgroupRoot } from '../test/support/kernel';
import { MiB, publishReport, repoRoot, table } from './report';

/** Node sizes the projection is given for; the goal is judged at 64. */
const PROJECTED_CPUS = [64, 192];
const GOAL_CPUS = 64;
const GOAL_BYTES = 64 * MiB;

interface Measured {
  granularity: 'pod' | 'flow';
  cpusHere: number;
  maps: MapMemory[];
}

/** Loads every group the kernel can run with `config`, reads its maps' memory, unloads. */
function measure(config: FlowtelConfig): { cpus: number; maps: MapMemory[] } {
  const runtime = new BpfRuntime({ objectDir: config.bpfObjectDir, ringBufferBytes: config.ringBuffer.sizeBytes, maxQueuedBatches: 1 });
  try {
    const kernel = kernelFactsFrom(runtime.native);
    for (const entry of PROBE_GROUPS) {
      const plan = planHooks(entry.hooks, kernel);
      if (!plan.supported) continue;
      const group = entry.build(config.probes, { kernelHz: { hz: HZ_MAX }, cgroupRoot: cgroupRoot() });
      runtime.load(group.objectSpec, plan.programs);
    }
    return { cpus: runtime.possibleCpus, maps: runtime.mapMemory() };
  } finally {
    runtime.close();
  }
}

function withGranularity(config: FlowtelConfig, granularity: 'pod' | 'flow'): FlowtelConfig {
  const probes = Object.fromEntries(Object.entries(config.probes).map(([key, group]) => [key, { ...group, granularity }]));
  return { ...config, probes: probes as FlowtelConfig['probes'] };
}

const sum = (maps: MapMemory[], cpus: number, cpusHere: number) => maps.reduce((s, m) => s + projectedBytes(m, cpus, cpusHere), 0);

export function mapMemoryReport(runs: Measured[], markdown: boolean): string {
  const mib = (bytes: number) => (bytes / MiB).toFixed(1);
  const [pod] = runs;
  const cpusHere = pod.cpusHere;
  const groups = [...new Set(pod.maps.map((m) => m.group ?? '(shared)'))];
  const byGroup = groups.map((group) => {
    const maps = pod.maps.filter((m) => (m.group ?? '(shared)') === group);
    const perCpu = maps.filter((m) => m.perCpu).map((m) => m.map);
    return [
      group,
      mib(sum(maps, cpusHere, cpusHere)),
      ...PROJECTED_CPUS.map((cpus) => mib(sum(maps, cpus, cpusHere))),
      perCpu.length ? perCpu.join(', ') : '–',
    ];
  });
  const totals = runs.map((run) => [
    `all groups, ${run.granularity} granularity`,
    mib(sum(run.maps, cpusHere, cpusHere)),
    ...PROJECTED_CPUS.map((cpus) => mib(sum(run.maps, cpus, cpusHere))),
    '',
  ]);
  const worst = Math.max(...runs.map((run) => sum(run.maps, GOAL_CPUS, cpusHere)));
  return [
    `Every group this kernel runs, loaded with the default config, nothing counted yet. "Here" is each map's \`memlock\` as the kernel states it on this ${cpusHere}-CPU machine (what \`flowtel.agent.bpf.map.memory\` exports). The other columns project it to nodes with more possible CPUs: a per-CPU map holds each row's value once per possible CPU; the others do not grow. Maps that are not preallocated (\`tcp_connections_counts\` and the socket tables \`tcp_rtt_sockets\`, \`flows_sockets\`) state the rows they hold (Linux 6.4+), here none. MiB:`,
    '',
    table(['Group', `Here (${cpusHere} CPUs)`, ...PROJECTED_CPUS.map((c) => `${c} CPUs`), 'Per-CPU maps'], [...byGroup, ...totals], markdown),
    '',
    table(
      ['Target', 'Measured', 'Met'],
      [[`Kernel memory of our maps ≤ 64 MiB at ${GOAL_CPUS} possible CPUs`, `${mib(worst)} MiB`, worst <= GOAL_BYTES ? 'yes' : 'no']],
      markdown,
    ),
  ].join('\n');
}

export async function runMapMemoryBenchmark(args: string[]): Promise<number> {
  const base = defaultConfig(repoRoot());
  const runs: Measured[] = (['pod', 'flow'] as const).map((granularity) => {
    const { cpus, maps } = measure(withGranularity(base, granularity));
    return { granularity, cpusHere: cpus, maps };
  });
  publishReport(
    args,
    {
      title: 'Kernel memory of the BPF maps',
      name: 'map-memory',
      rerun: '`npx tsc -p tsconfig.json && npm run bench -- map-memory` (as root; a few seconds).',
    },
    (markdown) => mapMemoryReport(runs, markdown),
  );
  return 0;
}
