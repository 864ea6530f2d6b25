/**
 * Userspace capacity of the agent:
 * - idle RSS (every group on, nothing happening);
 * - ring-buffer events per second handled with zero loss on one core (the
 *   agent pinned to CPU 0, a paced generator of drop events, UDP datagrams to
 *   a closed port, on CPU 1), stepping the rate up until events are lost;
 *   CPU per 10,000 events;
 * - collection time and RSS with 10,000 and 100,000 live flows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { mustRun } from '../src/testbed/exec';
import { OtlpReceiver } from '../src/testbed/otlp-receiver';
import { TestNode } from '../src/testbed/test-node';
import { AgentProcess, freshExport, sleep } from '../test/support/agent-process';
import { cgroupRoot } from '../test/support/kernel';
import { netClient } from '../test/support/traffic';
import { cpuSeconds, rssBytes } from './proc';
import { MiB, publishReport, repoRoot, summarize, table, type Summary } from './report';

interface Ctx {
  node: TestNode;
  receiver: OtlpReceiver;
  dir: string;
}

async function startAgent(ctx: Ctx, name: string, yaml: string, intervalMs: number, pinCpu?: number): Promise<AgentProcess> {
  const file = path.join(ctx.dir, `${name}.yaml`);
  fs.writeFileSync(file, yaml);
  const agent = AgentProcess.start(['--config', file, '--cgroup-root', cgroupRoot(), '--prometheus', 'false', '--console', 'false'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: ctx.receiver.endpoint,
    OTEL_METRIC_EXPORT_INTERVAL: String(intervalMs),
  });
  await agent.running();
  // Pin every thread (libuv pool and the ring-buffer thread included) to one core.
  if (pinCpu !== undefined && agent.child.pid) {
    const { execFileSync } = await import('node:child_process');
    execFileSync('taskset', ['-a', '-p', '-c', String(pinCpu), String(agent.child.pid)]);
  }
  return agent;
}

/**
 * How long each live-flow size runs after its flows are sent (RSS sampled each second): nine and a half
 * export intervals, so that several collections after the one that names the flows are measured even when
 * an export takes longer than an interval to reach the receiver.
 */
const FLOW_WINDOW_MS = 95_000;

/**
 * repeated: a flood of one kind of drop from many sockets (64 source ports, one
 * destination), as from a crash-looping client; the agent folds repeats into
 * summary log records. distinct: every datagram to another of 20,000 ports, so
 * nearly every event becomes its own log record: the log pipeline's capacity.
 */
const RING_WORKLOADS = [
  { name: 'repeated', sockets: 64, ports: 1, rates: [25_000, 50_000, 100_000, 150_000] },
  { name: 'distinct', sockets: 1, ports: 20_000, rates: [2_500, 5_000, 10_000, 20_000] },
] as const;
type RingWorkload = (typeof RING_WORKLOADS)[number];

/** Live-flow sizes: addresses × ports of pod B. */
const FLOW_SIZES: ReadonlyArray<readonly [number, number]> = [
  [10, 1000],
  [100, 1000],
];

interface RingRun {
  workload: RingWorkload['name'];
  offered: number;
  /** Datagrams the generator managed to send per second (it is one Python process on one core). */
  sent: number;
  received: number;
  lost: number;
  logRecords: number;
  logDrops: number;
  cpuPer10k: number;
}

function workloadRates(workload: RingWorkload, args: string[]): readonly number[] {
  const flag = `--${workload.name}-rates`;
  return args.includes(flag) ? args[args.indexOf(flag) + 1].split(',').map(Number) : workload.rates;
}

async function measureRing(ctx: Ctx, agent: AgentProcess, workload: RingWorkload, rate: number, seconds: number): Promise<RingRun> {
  const { node, receiver } = ctx;
  await freshExport(receiver);
  const logDrops = () =>
    receiver.latestTotal('flowtel.agent.events.lost', { 'flowtel.loss.reason': 'log_queue_full' }) +
    receiver.latestTotal('flowtel.agent.events.lost', { 'flowtel.loss.reason': 'log_export_failed' });
  const before = {
    received: receiver.latestTotal('flowtel.agent.events.received'),
    lost: receiver.latestTotal('flowtel.agent.events.lost'),
    logDrops: logDrops(),
    logRecords: receiver.logRecords.length,
  };
  const pid = agent.child.pid as number;
  const cpu0 = cpuSeconds(pid);
  const started = Date.now();
  const generator = await node.inPod(
    'a',
    'taskset',
    [
      '-c',
      '1',
      'python3',
      path.join(repoRoot(), 'test', 'support', 'net_client.py'),
      'paced',
      node.pod('b').ip,
      '7700',
      String(seconds),
      String(rate),
      String(workload.sockets),
      String(workload.ports),
    ],
    { timeoutMs: 60_000 },
  );
  // The ring holds a backlog the agent works off after the generator stops: handled when the agent goes idle.
  let drained = Date.now();
  for (let last = cpuSeconds(pid); ;) {
    await sleep(250);
    const now = cpuSeconds(pid);
    if (now - last < 0.025) break;
    last = now;
    drained = Date.now();
  }
  const handlingSeconds = Math.max(seconds, (drained - started) / 1000);
  // Summaries close with the 1 s aggregation window, and the log processor exports every second.
  await sleep(2500);
  const cpu1 = cpuSeconds(pid);
  await freshExport(receiver);
  const received = receiver.latestTotal('flowtel.agent.events.received') - before.received;
  const run: RingRun = {
    workload: workload.name,
    offered: rate,
    sent: Number(generator.stdout.trim()) / seconds,
    received: received / handlingSeconds,
    lost: receiver.latestTotal('flowtel.agent.events.lost') - before.lost,
    logRecords: receiver.logRecords.length - before.logRecords,
    logDrops: logDrops() - before.logDrops,
    cpuPer10k: ((cpu1 - cpu0) / (received / 10_000)) * 1000,
  };
  process.stdout.write(
    `  ring ${workload.name} ${rate}/s offered, ${run.sent.toFixed(0)}/s sent: ${run.received.toFixed(0)}/s received, ${run.lost} lost, ` +
      `${run.logRecords} log records, ${run.logDrops} log records dropped, ${run.cpuPer10k.toFixed(1)} ms CPU per 10k\n`,
  );
  return run;
}

export interface CapacityResult {
  idleRss: Summary;
  ring: RingRun[];
  maxZeroLoss: number;
  flows: Array<{ flows: number; collectMs: Summary; rssMiB: number; series: number; heapMiB: Summary; externalMiB: Summary }>;
}

export async function runCapacity(args: string[]): Promise<CapacityResult> {
  const node = await TestNode.create({ cgroupRoot: cgroupRoot(), pods: [{ name: 'a' }, { name: 'b' }] });
  const receiver = await OtlpReceiver.start();
  const ctx: Ctx = { node, receiver, dir: fs.mkdtempSync('/tmp/flowtel-capacity-') };
  try {
    // Idle RSS, three fresh agents.
    const idle: number[] = [];
    for (let i = 0; i < 3; i++) {
      const agent = await startAgent(ctx, 'idle', 'kubernetes:\n  enabled: false\n', 2000);
      await sleep(12_000);
      idle.push(rssBytes(agent.child.pid as number) / MiB);
      await agent.stop();
      process.stdout.write(`  idle RSS ${idle[i].toFixed(1)} MiB\n`);
    }

    // Ring-buffer capacity: drop events without a rate limit, two workloads (see RING_WORKLOADS).
    const ring: CapacityResult['ring'] = [];
    const agent = await startAgent(ctx, 'ring', 'probes:\n  drops:\n    maxEventsPerSecondPerCpu: 1000000\n', 1000, 0);
    const seconds = 5;
    for (const workload of RING_WORKLOADS) {
      for (const rate of workloadRates(workload, args)) {
        ring.push(await measureRing(ctx, agent, workload, rate, seconds));
      }
    }
    await agent.stop();
    const zeroLoss = ring.filter((r) => r.workload === 'repeated' && r.lost === 0 && r.logDrops === 0);
    const maxZeroLoss = zeroLoss.length ? Math.max(...zeroLoss.map((r) => r.received)) : 0;

    // Live flows: 10,000 and 100,000 distinct (peer, port) flows to 100 addresses pod B answers for.
    const prefix = node.pod('b').ip.split('.').slice(0, 3).join('.');
    for (let host = 100; host < 200; host++) {
      await mustRun('ip', ['netns', 'exec', node.pod('b').netns, 'ip', 'addr', 'add', `${prefix}.${host}/32`, 'dev', 'eth0']);
    }
    const flows: CapacityResult['flows'] = [];
    // --flow-sizes none skips the live-flow part (ring and idle only, for quick comparisons).
    const sizes = args.includes('--flow-sizes') && args[args.indexOf('--flow-sizes') + 1] === 'none' ? [] : FLOW_SIZES;
    for (const [hosts, ports] of sizes) {
      // Exports every 10 s: one OTLP export of 200,000 points takes seconds to reach this process's receiver
      // (it decodes every point with protobufjs), and the agent skips exporting a collection that would overlap
      // the previous export.
      const intervalMs = 10_000;
      const flowAgent = await startAgent(ctx, 'flows', 'probes:\n  flows:\n    granularity: flow\n    maxRows: 262144\n', intervalMs);
      const pid = flowAgent.child.pid as number;
      await netClient(node, 'a', ['flows', prefix, 100, hosts, 20000, ports], 300_000);
      const firstFull = Date.now();
      const rss: number[] = [];
      while (Date.now() - firstFull < FLOW_WINDOW_MS) {
        await sleep(1000);
        rss.push(rssBytes(pid) / MiB);
      }
      const cpu = cpuSeconds(pid);
      // Stopping flushes the export in flight, so the last collections' durations arrive too.
      await flowAgent.stop();
      // Skip the collection that named every new flow (built the row cache), the first after the flows were
      // sent. The duration gauge is read when the SDK collects, before our series, so each point reports the
      // collection before its own: points stamped more than two intervals after the flows were sent report
      // collections after the naming one. Chosen by their stamps, not by when they arrived: a 200,000-point
      // export can take longer than an interval to reach this process's receiver.
      const sinceNs = BigInt(firstFull + 2 * intervalMs) * 1_000_000n;
      const durations = receiver.metricExports
        .flatMap((e) => e.points.filter((p) => p.metric === 'flowtel.agent.collection.duration' && p.timeUnixNano > sinceNs))
        .map((p) => p.value * 1000);
      const series = receiver.latestPoints('k8s.pod.network.io', { 'k8s.pod.uid': node.pod('a').uid }).length;
      const memory = exportedMemory(receiver, BigInt(firstFull) * 1_000_000n);
      flows.push({ flows: hosts * ports, collectMs: summarize(durations), rssMiB: Math.max(...rss), series, ...memory });
      process.stdout.write(
        `  ${hosts * ports} flows: ${series} series, collection ${summarize(durations).median.toFixed(0)} ms (${durations.length} collections), peak RSS ${Math.max(...rss).toFixed(1)} MiB, CPU ${cpu.toFixed(1)} s\n`,
      );
      // Where the peak is, for whoever attacks it next: RSS each second from when the flows were sent.
      process.stdout.write(`    RSS (MiB, 1 s apart): ${rss.map((x) => x.toFixed(0)).join(' ')}\n`);
    }
    return { idleRss: summarize(idle), ring, maxZeroLoss, flows };
  } finally {
    await receiver.stop();
    await node.destroy();
    fs.rmSync(ctx.dir, { recursive: true, force: true });
  }
}

/**
 * The agent's own memory metrics over the window, one sample per collection:
 * V8's heap in use (all spaces) and the Buffers outside it. They say which part
 * of the resident set the flows take.
 */
function exportedMemory(receiver: OtlpReceiver, sinceNs: bigint): { heapMiB: Summary; externalMiB: Summary } {
  const heapAt = new Map<bigint, number>();
  const external: number[] = [];
  for (const e of receiver.metricExports) {
    for (const p of e.points) {
      if (p.timeUnixNano <= sinceNs) continue;
      if (p.metric === 'v8js.memory.heap.used') heapAt.set(p.timeUnixNano, (heapAt.get(p.timeUnixNano) ?? 0) + p.value / MiB);
      else if (p.metric === 'flowtel.agent.memory.external') external.push(p.value / MiB);
    }
  }
  return { heapMiB: summarize([...heapAt.values()]), externalMiB: summarize(external) };
}

export function capacityReport(r: CapacityResult, markdown: boolean): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  const flow100k = r.flows.find((x) => x.flows === 100_000);
  const targets = [
    ['≥ 100,000 ring-buffer events/s with zero loss (one core, repeated)', `${f(r.maxZeroLoss, 0)}/s`, r.maxZeroLoss >= 100_000 ? 'yes' : 'no'],
    [
      '100,000 flows collected in ≤ 300 ms per cycle',
      flow100k ? `${f(flow100k.collectMs.median, 0)} ms` : '–',
      flow100k && flow100k.collectMs.median <= 300 ? 'yes' : 'no',
    ],
    ['RSS ≤ 70 MB idle', `${f(r.idleRss.median)} MiB`, r.idleRss.median * MiB <= 70e6 ? 'yes' : 'no'],
    ['RSS ≤ 120 MB with 100,000 flows', flow100k ? `${f(flow100k.rssMiB)} MiB` : '–', flow100k && flow100k.rssMiB * MiB <= 120e6 ? 'yes' : 'no'],
  ];
  return [
    `Idle RSS (every group on, Kubernetes off, 12 s after start, 3 agents): ${f(r.idleRss.median)} MiB (${f(r.idleRss.min)}–${f(r.idleRss.max)}).`,
    '',
    'Ring buffer, agent pinned to CPU 0 (`taskset -a`), drop events (UDP to a closed port) from a paced generator on CPU 1 (one Python process: "sent" is what it managed), 5 s per rate, no event rate limit, default 2 MiB ring and 1 s aggregation window. Received is the events the agent took from the ring and handled, over the time until it was idle again (at least the 5 s of the run). Workload *repeated*: 64 source sockets to one closed port, as a crash-looping client makes; repeats fold into summary log records. Workload *distinct*: one socket to 20,000 closed ports, so nearly every event is its own log record (the log pipeline\'s capacity). Zero loss means no event lost in the ring or queue and no log record dropped by the SDK:',
    '',
    table(
      [
        'Workload',
        'Offered events/s',
        'Sent/s',
        'Received events/s',
        'Events lost (ring, queue)',
        'Log records exported',
        'Log records dropped (SDK queue full)',
        'Agent CPU per 10,000 events',
      ],
      r.ring.map((x) => [
        x.workload,
        f(x.offered, 0),
        f(x.sent, 0),
        f(x.received, 0),
        String(x.lost),
        String(x.logRecords),
        String(x.logDrops),
        `${f(x.cpuPer10k)} ms`,
      ]),
      markdown,
    ),
    '',
    `Live flows at flow granularity (flows.maxRows 262,144; one UDP datagram to each of N addresses × ports of pod B; OTLP export every 10 s). Collection time is the agent's \`flowtel.agent.collection.duration\` (every kernel-map series read and aggregated) over the collections after the first one that saw every flow (which names each new flow once); RSS is the peak of 1 s samples over ${FLOW_WINDOW_MS / 1000} s; V8 heap in use and external memory (Buffers and typed arrays: map reads, the counter tables' columns, requests) are the agent's own \`v8js.memory.heap.used\` and \`flowtel.agent.memory.external\`, sampled at each collection (median, min–max):`,
    '',
    table(
      ['Flows', 'Flow series of the pod', 'Collection time per cycle', 'Agent peak RSS', 'V8 heap in use', 'External memory'],
      r.flows.map((x) => [
        x.flows.toLocaleString('en-US'),
        x.series.toLocaleString('en-US'),
        `${f(x.collectMs.median, 0)} ms (${f(x.collectMs.min, 0)}–${f(x.collectMs.max, 0)})`,
        `${f(x.rssMiB)} MiB`,
        `${f(x.heapMiB.median)} MiB (${f(x.heapMiB.min)}–${f(x.heapMiB.max)})`,
        `${f(x.externalMiB.median)} MiB (${f(x.externalMiB.min)}–${f(x.externalMiB.max)})`,
      ]),
      markdown,
    ),
    '',
    table(['Target', 'Measured', 'Met'], targets, markdown),
  ].join('\n');
}

export async function runCapacityBenchmark(args: string[]): Promise<number> {
  const result = await runCapacity(args);
  publishReport(
    args,
    {
      title: 'Userspace capacity',
      name: 'capacity',
      rerun:
        '`npx tsc -p tsconfig.json && npm run bench -- capacity` (as root; `--repeated-rates 25000,50000,...`, `--distinct-rates ...`, `--flow-sizes none` to skip the live flows).',
    },
    (markdown) => capacityReport(result, markdown),
  );
  return 0;
}
