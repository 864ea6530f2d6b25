/**
 * Agent lifecycle: export pipeline, attribution, BPF runtime, probe groups,
 * self-metrics; and the reverse on stop. A probe group that cannot load is
 * disabled with one warning naming the cause (./group-loader); the others run.
 */
import os from 'node:os';
import { KernelClock } from '../bpf/clock';
import { openJiffiesReader } from '../bpf/kernel-clock';
import { detectKernelHz, HZ_MAX } from '../bpf/kernel-hz';
import { BpfRuntime } from '../bpf/runtime';
import { formatMiB } from '../bpf/map-memory';
import type { FlowtelConfig } from '../config/config';
import { agentResource } from '../exporters/resource';
import type { ExportWatch } from '../exporters/export-watch';
import { createTelemetryPipeline, type TelemetryPipeline } from '../exporters/pipeline';
import { CgroupAttribution } from '../k8s/attribution';
import { CgroupIndex } from '../k8s/cgroup-index';
import type { KubernetesMetadata } from '../k8s/metadata';
import { NetnsIndex } from '../k8s/netns-index';
import { registerKubernetesMetrics } from '../k8s/self-metrics';
import { PROBE_GROUPS } from '../probes/registry';
import { networkEventLogger } from '../events/emit';
import { EventAggregator } from '../events/event-aggregator';
import type { SharedProbeContext } from '../probes/types';
import { loadGroups, statusLogLine, type GroupStatus, type RunningGroup } from './group-loader';
import { AgentLog } from '../util/log';
import { installDiagnosticLog } from './diagnostic-log';
import { HealthServer } from './health';
import { registerSelfMetrics } from './self-metrics';
import { LOSS_LOG_EXPORT_FAILED, LOSS_LOG_QUEUE_FULL } from '../semconv';
import { CAP_SYS_PTRACE, effectiveCapabilities, hasCapability } from '../bpf/capabilities';

export interface AgentOptions {
  config: FlowtelConfig;
  version: string;
  log?: AgentLog;
  consoleOut?: NodeJS.WritableStream;
}

export class Agent {
  private constructor(
    private readonly pipeline: TelemetryPipeline,
    private readonly runtime: BpfRuntime,
    private readonly events: EventAggregator,
    private readonly groups: RunningGroup[],
    private readonly stopServices: () => Promise<void>,
    private readonly log: AgentLog,
    /** The final export's budget after SIGTERM (config shutdown.timeoutMs). */
    private readonly shutdownTimeoutMs: number,
  ) {}

  static async start(options: AgentOptions): Promise<Agent> {
    const { config, version } = options;
    const log = options.log ?? new AgentLog(config.logLevel);
    installDiagnosticLog(log, config.exporters.otlp.failureSummaryIntervalMs);
    // Up first: kubelet's liveness probe must answer while BPF objects load.
    const health = config.health.enabled ? await HealthServer.start(config.health.host, config.health.port) : undefined;
    const pipeline = await createTelemetryPipeline({
      config,
      resource: agentResource(config.nodeName, version),
      version,
      ...(options.consoleOut ? { consoleOut: options.consoleOut } : {}),
      log,
      onLogLoss: (kind, detail) =>
        log.warn(`log records are being lost: ${detail}; counted in flowtel.agent.events.lost (logged once)`, {
          reason: kind === 'queueFull' ? LOSS_LOG_QUEUE_FULL : LOSS_LOG_EXPORT_FAILED,
        }),
    });
    const index = new CgroupIndex({ root: config.cgroupRoot });
    index.rescan();
    const netns = new NetnsIndex();
    netns.rescan();
    // With CAP_SYS_PTRACE a process may still be unreadable (a security module, an exiting process): not worth a warning.
    if (netns.unreadableProcesses > 0 && !hasCapability(effectiveCapabilities(), CAP_SYS_PTRACE)) {
      log.warn(
        `cannot read the network namespace of ${netns.unreadableProcesses} processes (/proc/<pid>/ns/net: permission denied): ` +
          'events without a socket in their pods (packets dropped before socket lookup, resets answering a closed port) are attributed to unknown; ' +
          'grant CAP_SYS_PTRACE (the Helm chart does). Counted in flowtel.agent.netns.unreadable',
        { capability: 'CAP_SYS_PTRACE' },
      );
    }
    const runtime = new BpfRuntime({
      objectDir: config.bpfObjectDir,
      ringBufferBytes: config.ringBuffer.sizeBytes,
      maxQueuedBatches: config.ringBuffer.maxQueuedBatches,
      maxQueuedBytes: config.ringBuffer.maxQueuedBytes,
    });
    const attribution = new CgroupAttribution(index, config.nodeName, netns);
    const kubernetes = startKubernetes(config, log);
    if (kubernetes) attribution.useMetadata(kubernetes);
    const events = new EventAggregator(networkEventLogger(pipeline.logger, new KernelClock()), {
      windowMs: config.events.aggregationWindowMs,
      maxKeys: config.events.maxAggregatedKeys,
    });
    const shared: SharedProbeContext = {
      events,
      attribution,
      runtime,
      log,
      cgroupGracePeriodMs: config.collection.cgroupGracePeriodMs,
      series: pipeline.series,
    };

    /** Undoes start-up so far, when the agent cannot run. */
    const abandonStart = async (): Promise<void> => {
      kubernetes?.stop();
      await health?.stop();
      runtime.close();
      await pipeline.shutdown(Date.now() + config.shutdown.timeoutMs);
    };
    let loaded: ReturnType<typeof loadGroups>;
    try {
      // Measuring the tick rate loads a BPF program: only for a group that samples by it.
      const needsHz = PROBE_GROUPS.some((g) => g.needsKernelHz && g.enabled(config.probes));
      const kernelHz = needsHz ? await detectKernelHz(() => openJiffiesReader(config.bpfObjectDir)) : { hz: HZ_MAX };
      loaded = loadGroups(PROBE_GROUPS, config, shared, { kernelHz, cgroupRoot: config.cgroupRoot });
    } catch (err) {
      // A configuration mistake is the operator's to fix, not a kernel limitation.
      await abandonStart();
      throw err;
    }
    const { started, statuses } = loaded;
    for (const status of statuses) {
      const line = statusLogLine(status);
      if (line) log.warn(line, { group: status.group, state: status.state });
    }
    if (started.length === 0) {
      await abandonStart();
      throw new Error('no probe group could be loaded (see the warnings above); nothing to do');
    }
    events.start();
    runtime.startEvents();
    // Start-up parsed the kernel's BTF once per object and freed it; give those pages back.
    runtime.native.releaseFreedMemory();
    const stopServices = registerSelfMetrics(pipeline.meter, runtime, pipeline, events, statuses, netns);
    const stopKubernetesMetrics = kubernetes ? registerKubernetesMetrics(pipeline.meter, kubernetes) : () => {};
    log.info('flowtel running', {
      node: config.nodeName,
      groups: started.map((g) => g.group.name).join(','),
      kernel: os.release(),
      cgroupRoot: config.cgroupRoot,
      exporting: pipeline.destinations.join('; '),
      kubernetes: kubernetes ? 'on' : 'off (cgroup attribution only)',
      // What the kernel holds for our maps, which counts against the pod's memory limit too.
      bpfMaps: `${formatMiB(runtime.mapMemory().reduce((sum, m) => sum + m.bytes, 0))} for ${runtime.possibleCpus} possible CPUs`,
    });
    // pollErrors is a running total and the poll loop carries on after an error: unready only while errors keep coming.
    let pollErrorsSeen = 0;
    const exportWindowMs = config.health.maxIntervalsWithoutExport * config.exporters.otlp.exportIntervalMs;
    health?.setReadiness(() => {
      const ring = runtime.ringStats();
      const k8s = kubernetes?.stats().map((s) => ({ resource: s.resource, synced: s.synced, error: s.lastError }));
      const newPollErrors = (ring?.pollErrors ?? 0) > pollErrorsSeen;
      pollErrorsSeen = ring?.pollErrors ?? 0;
      const why: string[] = [];
      if (ring?.running !== true) why.push('the ring buffer consumer is not running');
      if (newPollErrors) why.push('polling the ring buffer fails');
      // A group this kernel cannot run, or that the config turned off, is as expected; one that should run and did not is not.
      for (const s of statuses) if (s.state === 'failed') why.push(`probe group ${s.group} failed to load`);
      for (const watch of pipeline.exportWatches) {
        if (!watch.healthy(exportWindowMs)) why.push(`no ${watch.signal} export has succeeded for over ${exportWindowMs / 1000} s (${watch.lastCause})`);
      }
      // Kubernetes trouble degrades names, not data: it does not make the agent unready.
      return {
        ready: why.length === 0,
        detail: {
          ...(why.length ? { reasons: why } : {}),
          groups: readinessGroups(statuses),
          exports: pipeline.exportWatches.map(exportReadiness),
          ringBuffer: ring,
          kubernetes: k8s ?? 'off',
        },
      };
    });
    return new Agent(
      pipeline,
      runtime,
      events,
      started,
      async () => {
        stopServices();
        stopKubernetesMetrics();
        kubernetes?.stop();
        await health?.stop();
      },
      log,
      config.shutdown.timeoutMs,
    );
  }

  /**
   * Detaches every link, exports the final totals and queued events, then
   * closes. The export gets the shutdown budget and no retries: a collector
   * that is down or silent costs at most that, and the last log line says
   * what it kept from being sent.
   */
  async stop(): Promise<void> {
    const startedAt = Date.now();
    this.runtime.detachAll();
    // Let batches already queued by the ring-buffer thread reach JS, then handle all of them.
    await new Promise((resolve) => setImmediate(resolve));
    this.runtime.drainEvents();
    // Summaries of repeats still being counted go out with the final flush.
    this.events.stop();
    // The final collection reads the kernel maps: before the groups close them.
    const report = await this.pipeline.shutdown(startedAt + this.shutdownTimeoutMs);
    for (const group of this.groups) group.unload();
    await this.stopServices();
    this.runtime.close();
    const fields = {
      seconds: ((Date.now() - startedAt) / 1000).toFixed(2),
      metricPointsNotSent: report.metricPointsNotSent,
      logRecordsNotSent: report.logRecordsNotSent,
      ...(report.lastFailure ? { lastFailure: report.lastFailure } : {}),
    };
    if (!report.finished) this.log.warn(`flowtel stopped: the final export did not finish within the shutdown budget of ${this.shutdownTimeoutMs} ms`, fields);
    else if (report.metricPointsNotSent > 0 || report.logRecordsNotSent > 0)
      this.log.warn('flowtel stopped: the final export was not delivered in full', fields);
    else this.log.info('flowtel stopped', fields);
  }
}

/** The Kubernetes metadata cache, or undefined (configured off, or no usable kubeconfig: cgroup attribution only). */
function startKubernetes(config: FlowtelConfig, log: AgentLog): KubernetesMetadata | undefined {
  const k = config.kubernetes;
  const wanted = k.enabled ?? Boolean(k.kubeconfig || process.env.KUBECONFIG || process.env.KUBERNETES_SERVICE_HOST);
  if (!wanted) return undefined;
  // Loaded only when used: @kubernetes/client-node is large, and nodes without API access need none of it.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { KubeClient } = require('../k8s/kube-client') as typeof import('../k8s/kube-client');
  const { KubernetesMetadata: Metadata } = require('../k8s/metadata') as typeof import('../k8s/metadata');
  /* eslint-enable @typescript-eslint/no-require-imports */
  let client: InstanceType<typeof KubeClient>;
  try {
    client = KubeClient.load(k.kubeconfig);
  } catch (err) {
    log.error(`kubernetes: cannot use kubeconfig ${k.kubeconfig ?? process.env.KUBECONFIG ?? '(in-cluster)'}: ${firstLine(err)}; attributing by cgroup only`);
    return undefined;
  }
  const metadata = new Metadata({
    client,
    nodeName: config.nodeName,
    resolvePeers: k.resolvePeers,
    podLabels: k.podLabels,
    deletedPodGracePeriodMs: k.deletedPodGracePeriodMs,
    log,
  });
  metadata.start();
  return metadata;
}

/** Each group's state for /readyz: what runs, with which programs, and why the others do not. */
function readinessGroups(statuses: readonly GroupStatus[]): Record<string, unknown> {
  return Object.fromEntries(
    statuses.map((s) => [
      s.group,
      { state: s.state, ...(s.reasons.length ? { reasons: s.reasons } : {}), ...(s.programs.length ? { programs: s.programs } : {}) },
    ]),
  );
}

function exportReadiness(watch: ExportWatch): Record<string, unknown> {
  const last = watch.lastSuccessAt;
  return {
    signal: watch.signal,
    lastSuccess: last === undefined ? null : new Date(last).toISOString(),
    ...watch.totals,
    ...(watch.isFailing ? { failing: watch.lastCause } : {}),
  };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
