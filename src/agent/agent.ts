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
import { TcpRetransmitsGroup } from '../probes/tcp-retransmits';
import type { ProbeContext, ProbeGroup } from '../probes/types';
import { AgentLog } from './log';
import { registerSelfMetrics } from './self-metrics';

export interface AgentOptions {
  config: FlowtelConfig;
  version: string;
  log?: AgentLog;
  consoleOut?: NodeJS.WritableStream;
}

function buildGroups(config: FlowtelConfig): ProbeGroup[] {
  const groups: ProbeGroup[] = [];
  if (config.probes.tcpRetransmits.enabled) groups.push(new TcpRetransmitsGroup(config.probes.tcpRetransmits));
  return groups;
}

export class Agent {
  private constructor(
    private readonly pipeline: TelemetryPipeline,
    private readonly runtime: BpfRuntime,
    private readonly groups: ProbeGroup[],
    private readonly stopSelfMetrics: () => void,
    private readonly log: AgentLog,
  ) {}

  get runningGroups(): string[] {
    return this.groups.map((g) => g.name);
  }

  static async start(options: AgentOptions): Promise<Agent> {
    const { config, version } = options;
    const log = options.log ?? new AgentLog(config.logLevel);
    const pipeline = await createTelemetryPipeline({
      config,
      resource: agentResource(config.nodeName, version),
      version,
      ...(options.consoleOut ? { consoleOut: options.consoleOut } : {}),
    });
    const index = new CgroupIndex({ root: config.cgroupRoot });
    index.rescan();
    const runtime = new BpfRuntime({
      objectDir: config.bpfObjectDir,
      ringBufferBytes: config.ringBuffer.sizeBytes,
      maxQueuedBatches: config.ringBuffer.maxQueuedBatches,
    });
    const context: ProbeContext = {
      meter: pipeline.meter,
      logger: pipeline.logger,
      attribution: new CgroupAttribution(index, config.nodeName),
      runtime,
      clock: new KernelClock(),
      log,
      cgroupGracePeriodMs: config.collection.cgroupGracePeriodMs,
    };

    const started: ProbeGroup[] = [];
    for (const group of buildGroups(config)) {
      try {
        group.start(runtime.load(group.objectSpec), context);
        started.push(group);
      } catch (err) {
        runtime.unload(group.name);
        log.warn(`probe group ${group.name} disabled: cannot load hook ${group.hooks.join(', ')} on this kernel`, {
          group: group.name,
          error: firstLine(err),
        });
      }
    }
    if (started.length === 0) {
      runtime.close();
      await pipeline.shutdown();
      throw new Error('no probe group could be loaded (see the warnings above); nothing to do');
    }
    runtime.startEvents();
    const stopSelfMetrics = registerSelfMetrics(pipeline.meter, runtime);
    log.info('flowtel running', {
      node: config.nodeName,
      groups: started.map((g) => g.name).join(','),
      cgroupRoot: config.cgroupRoot,
      exporting: pipeline.destinations.join('; '),
    });
    return new Agent(pipeline, runtime, started, stopSelfMetrics, log);
  }

  /** Detaches every link, exports the final totals and queued events, then closes. */
  async stop(): Promise<void> {
    this.runtime.detachAll();
    // Let batches already queued by the ring-buffer thread reach their handlers.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      await this.pipeline.forceFlush();
    } catch (err) {
      this.log.warn('final flush failed', { error: firstLine(err) });
    }
    for (const group of this.groups) group.stop();
    this.stopSelfMetrics();
    this.runtime.close();
    await this.pipeline.shutdown();
    this.log.info('flowtel stopped');
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
