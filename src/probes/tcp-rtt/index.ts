/**
 * tcp-rtt: the smoothed RTT of sockets receiving data (tp_btf/tcp_probe),
 * sampled in the kernel (each socket at its first segment, then at most once
 * per window of sampleIntervalMs; see bpf/tcp_rtt.bpf.c)
 * into quarter-octave histograms per local endpoint
 * (per flow at flow granularity), exported as an explicit-bucket histogram in
 * seconds whose boundaries are the kernel's bucket bounds.
 */
import type { HookSpec } from '../../bpf/hooks';
import type { TcpRttNames } from '../../bpf/objects.generated';
import type { LoadedProbeObject, ProbeObjectSpec } from '../../bpf/runtime';
import { tcpFieldsHook } from '../shared/kernel-requirements';
import { METRIC_TCP_RTT } from '../../semconv';
import { integer, object } from '../../config/schema';
import { COMMON_PROBE_FIELDS, DEFAULT_IDLE_FLOW_TIMEOUT_MS, type CommonProbeConfig } from '../config';
import { defineProbeGroup } from '../declaration';
import { u32 } from '../../bpf/le-bytes';
import { HZ_MAX, msToJiffies, type KernelHz } from '../../bpf/kernel-hz';
import { setCommonGlobals } from '../shared/globals';
import { KernelHistogramTable, kernelBoundaries } from '../../tables/kernel-histogram';
import type { ProbeContext, ProbeGroup } from '../types';

const MAP = 'tcp_rtt_histograms';

/** 16 µs to ~16.8 s in quarter octaves. */
export const RTT_BOUNDARIES_S = kernelBoundaries(16, 2 ** 24, 1e-6);

export interface TcpRttConfig extends CommonProbeConfig {
  /** Each socket's srtt is sampled at most this often (its first segment always). */
  sampleIntervalMs: number;
}

export const TCP_RTT_HOOKS: readonly HookSpec<TcpRttNames['programs']>[] = [tcpFieldsHook('tcp_probe', 2, '4.16')];

export class TcpRttGroup implements ProbeGroup<TcpRttNames> {
  readonly name = 'tcp-rtt';
  readonly hooks = TCP_RTT_HOOKS;
  readonly objectSpec: ProbeObjectSpec<TcpRttNames>;
  /** `hz`: the kernel samples by jiffies (see bpf/tcp_rtt.bpf.c), and the tick rate turns sampleIntervalMs into them. */
  constructor(
    private readonly config: TcpRttConfig,
    private readonly hz: KernelHz,
  ) {
    this.objectSpec = {
      group: this.name,
      objectFile: 'tcp_rtt.bpf.o',
      hooks: TCP_RTT_HOOKS,
      configure: (object) => {
        setCommonGlobals(object, { granularity: config.granularity });
        object.setGlobal('tcp_rtt_sample_interval_jiffies', u32(msToJiffies(config.sampleIntervalMs, this.hz.hz)));
        object.setMapMaxEntries(MAP, config.maxRows);
      },
    };
  }

  start(loaded: LoadedProbeObject<TcpRttNames>, context: ProbeContext): void {
    if (this.hz.source === undefined) {
      context.log.warn(
        `tcp-rtt: the kernel's tick rate is unknown (no /boot/config-<release> or /proc/config.gz, and ${this.hz.unknownBecause ?? 'not measured'}); ` +
          `assuming ${HZ_MAX} Hz, so a socket is sampled at most once per ${this.config.sampleIntervalMs} ms or up to ${HZ_MAX / 100} times less often`,
      );
    }
    const table = new KernelHistogramTable({
      object: loaded.object,
      mapName: MAP,
      keyStruct: 'tcp_rtt_key',
      attribution: context.attribution,
      possibleCpus: context.runtime.possibleCpus,
      boundaries: RTT_BOUNDARIES_S,
      scale: 1e-6,
      ...context.rowLifetime,
    });
    context.series.register(() => ({
      histograms: [{ metric: METRIC_TCP_RTT, boundaries: RTT_BOUNDARIES_S, series: table.collect() }],
    }));
  }
}

export const tcpRtt = defineProbeGroup<'tcpRtt', TcpRttConfig>({
  name: 'tcp-rtt',
  configKey: 'tcpRtt',
  config: {
    schema: object({
      enabled: COMMON_PROBE_FIELDS.enabled,
      granularity: COMMON_PROBE_FIELDS.granularity,
      sampleIntervalMs: integer(1, 3_600_000, 'milliseconds between RTT samples of one socket'),
      maxRows: COMMON_PROBE_FIELDS.maxRows,
      idleFlowTimeoutMs: COMMON_PROBE_FIELDS.idleFlowTimeoutMs,
    }),
    defaults: { enabled: true, granularity: 'pod', sampleIntervalMs: 50, maxRows: 4096, idleFlowTimeoutMs: DEFAULT_IDLE_FLOW_TIMEOUT_MS },
  },
  hooks: TCP_RTT_HOOKS,
  withoutIt: 'no round-trip-time histograms (flowtel.tcp.rtt)',
  telemetry: { metrics: [METRIC_TCP_RTT], events: [] },
  needsKernelHz: true,
  build: (config, node) => new TcpRttGroup(config, node.kernelHz),
});
