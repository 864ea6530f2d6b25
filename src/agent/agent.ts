/**
 * Agent lifecycle: export pipeline, attribution, BPF runtime, probe groups,
 * self-metrics; and the reverse on stop. A probe group that cannot load is
 * disabled with one warning naming its hook; the others run.
 */
import { KernelClock } from '../bpf/clock';
import { BpfRuntime } from '../bpf/runtime';
import type { FlowtelConfig } from '../config/config';
import { agentResource } from '../exporters/resource';
import { createTelemetryPipeline, type TelemetryPipeline } from '../exporters/pipeline';
import { CgroupAttribution } from '../k8s/attribution';
import { CgroupIndex } from '../k8s/cgroup-index';
import { ConfigError } from '../config/schema';
import type { KubernetesMetadata } from '../k8s/metadata';
import { NetnsIndex } from '../k8s/netns-index';
import { registerKubernetesMetrics } from '../k8s/self-metrics';
import { DropsGroup } from '../probes/drops';
import { FlowsGroup } from '../probes/flows';
import { TcpConnectionsGroup } from '../probes/tcp-connections';
import { TcpResetsGroup } from '../probes/tcp-resets';
import { TcpRetransmitsGroup } from '../probes/tcp-retransmits';
import { TcpRttGroup } from '../probes/tcp-rtt';
import { networkEventLogger } from '../probes/shared/emit';
import { EventAggregator } from '../probes/shared/event-aggregator';
import type { ProbeContext, ProbeGroup } from '../probes/types';
import { AgentLog } from './log';
import { HealthServer } from './health';
import { registerSelfMetrics } from './self-metrics';

export interface AgentOptions {
  config: FlowtelConfig;
  version: string;
  log?: AgentLog;
  consoleOut?: NodeJS.WritableStream;
}

/** The enabled groups, each built by a factory so a group that fails to build is disabled alone. */
function groupFactories(config: FlowtelConfig): Array<{ name: string; hooks: string[]; build: () => ProbeGroup }> {
  const p = config.probes;
  const all = [
    { name: 'tcp-retransmits', enabled: p.tcpRetransmits.enabled, hooks: ['tp_btf/tcp_retransmit_skb'], build: () => new TcpRetransmitsGroup(p.tcpRetransmits) },
    { name: 'tcp-resets', enabled: p.tcpResets.enabled, hooks: ['tp_btf/tcp_send_reset', 'tp_btf/tcp_receive_reset'], build: () => new TcpResetsGroup(p.tcpResets) },
    { name: 'drops', enabled: p.drops.enabled, hooks: ['tp_btf/kfree_skb'], build: () => new DropsGroup(p.drops) },
    {
      name: 'tcp-connections',
      enabled: p.tcpConnections.enabled,
      hooks: ['tp_btf/inet_sock_set_state'],
      build: () => new TcpConnectionsGroup(p.tcpConnections),
    },
    { name: 'tcp-rtt', enabled: p.tcpRtt.enabled, hooks: ['tp_btf/tcp_probe'], build: () => new TcpRttGroup(p.tcpRtt) },
    { name: 'flows', enabled: p.flows.enabled, hooks: ['cgroup_skb/ingress', 'cgroup_skb/egress'], build: () => new FlowsGroup(p.flows, config.cgroupRoot) },
  ];
  return all.filter((g) => g.enabled);
}

export class Agent {
  private constructor(
    private readonly pipeline: TelemetryPipeline,
    private readonly runtime: BpfRuntime,
    private readonly events: EventAggregator,
    private readonly groups: ProbeGroup[],
    private readonly stopServices: () => Promise<void>,
    private readonly log: AgentLog,
  ) {}

  static async start(options: AgentOptions): Promise<Agent> {
    const { config, version } = options;
    const log = options.log ?? new AgentLog(config.logLevel);
    // Up first: kubelet's liveness probe must answer while BPF objects load.
    const health = config.health.enabled ? await HealthServer.start(config.health.host, config.health.port) : undefined;
    const pipeline = await createTelemetryPipeline({
      config,
      resource: agentResource(config.nodeName, version),
      version,
      ...(options.consoleOut ? { consoleOut: options.consoleOut } : {}),
    });
    const index = new CgroupIndex({ root: config.cgroupRoot });
    index.rescan();
    const netns = new NetnsIndex();
    netns.rescan();
    const runtime = new BpfRuntime({
      objectDir: config.bpfObjectDir,
      ringBufferBytes: config.ringBuffer.sizeBytes,
      maxQueuedBatches: config.ringBuffer.maxQueuedBatches,
    });
    const attribution = new CgroupAttribution(index, config.nodeName, netns);
    const kubernetes = startKubernetes(config, log);
    if (kubernetes) attribution.useMetadata(kubernetes);
    const events = new EventAggregator(networkEventLogger(pipeline.logger, new KernelClock()), {
      windowMs: config.events.aggregationWindowMs,
      maxKeys: config.events.maxAggregatedKeys,
    });
    const context: ProbeContext = {
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
      await pipeline.shutdown();
    };
    const started: ProbeGroup[] = [];
    for (const factory of groupFactories(config)) {
      let group: ProbeGroup | undefined;
      try {
        group = factory.build();
        group.start(runtime.load(group.objectSpec), context);
        started.push(group);
      } catch (err) {
        // A group may have registered its series before failing: they would read an unloaded object.
        group?.stop();
        runtime.unload(factory.name);
        // A configuration mistake is the operator's to fix, not a kernel limitation.
        if (err instanceof ConfigError) {
          await abandonStart();
          throw err;
        }
        log.warn(`probe group ${factory.name} disabled: cannot load hook ${factory.hooks.join(', ')} on this kernel`, {
          group: factory.name,
          error: firstLine(err),
        });
      }
    }
    if (started.length === 0) {
      await abandonStart();
      throw new Error('no probe group could be loaded (see the warnings above); nothing to do');
    }
    events.start();
    runtime.startEvents();
    // Start-up parsed the kernel's BTF once per object and freed it; give those pages back.
    runtime.native.releaseFreedMemory();
    const stopServices = registerSelfMetrics(pipeline.meter, runtime, pipeline, events);
    const stopKubernetesMetrics = kubernetes ? registerKubernetesMetrics(pipeline.meter, kubernetes) : () => {};
    log.info('flowtel running', {
      node: config.nodeName,
      groups: started.map((g) => g.name).join(','),
      cgroupRoot: config.cgroupRoot,
      exporting: pipeline.destinations.join('; '),
      kubernetes: kubernetes ? 'on' : 'off (cgroup attribution only)',
    });
    // pollErrors is a running total and the poll loop carries on after an error: unready only while errors keep coming.
    let pollErrorsSeen = 0;
    health?.setReadiness(() => {
      const ring = runtime.ringStats();
      const k8s = kubernetes?.stats().map((s) => ({ resource: s.resource, synced: s.synced, error: s.lastError }));
      const newPollErrors = (ring?.pollErrors ?? 0) > pollErrorsSeen;
      pollErrorsSeen = ring?.pollErrors ?? 0;
      // Kubernetes trouble degrades names, not data: it does not make the agent unready.
      return { ready: ring?.running === true && !newPollErrors, detail: { groups: started.map((g) => g.name), ringBuffer: ring, kubernetes: k8s ?? 'off' } };
    });
    return new Agent(pipeline, runtime, events, started, async () => {
      stopServices();
      stopKubernetesMetrics();
      kubernetes?.stop();
      await health?.stop();
    }, log);
  }

  /** Detaches every link, exports the final totals and queued events, then closes. */
  async stop(): Promise<void> {
    this.runtime.detachAll();
    // Let batches already queued by the ring-buffer thread reach their handlers.
    await new Promise((resolve) => setImmediate(resolve));
    // Summaries of repeats still being counted go out with the final flush.
    this.events.stop();
    try {
      await this.pipeline.forceFlush();
    } catch (err) {
      this.log.warn('final flush failed', { error: firstLine(err) });
    }
    for (const group of this.groups) group.stop();
    await this.stopServices();
    this.runtime.close();
    await this.pipeline.shutdown();
    this.log.info('flowtel stopped');
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

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
