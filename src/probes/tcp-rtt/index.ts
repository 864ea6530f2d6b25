/**
 * tcp-rtt: the smoothed RTT of TCP sockets, each sampled at most once per
 * sampleIntervalMs while it receives ACKs, into quarter-octave histograms per
 * local endpoint (per flow at flow granularity), exported as an
 * explicit-bucket histogram in seconds whose boundaries are the kernel's
 * bucket bounds.
 *
 * Two mechanisms, chosen per kernel by the hooks' program variants (see
 * bpf/tcp_rtt.bpf.c): where programs can walk a map (5.13+), the group keeps
 * a table of established sockets and reads them every sampleIntervalMs, and
 * no program runs per packet; elsewhere tcp_probe samples sockets from their
 * received segments (a degradation, named at start).
 */
import type { HookSpec } from '../../bpf/hooks';
import type { TcpRttNames } from '../../bpf/objects.generated';
import type { LoadedProbeObject, ProbeObjectSpec } from '../../bpf/runtime';
import { PROBE_TRACEPOINT, RDONLY_CAST, SOCKET_CGROUP, SOCKET_TABLE, socketTableHooks } from '../shared/kernel-requirements';
import { adoptExistingSockets, walker } from '../shared/socket-table';
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
const SOCKETS = 'tcp_rtt_sockets';

/** 16 µs to ~16.8 s in quarter octaves. */
export const RTT_BOUNDARIES_S = kernelBoundaries(16, 2 ** 24, 1e-6);

export interface TcpRttConfig extends CommonProbeConfig {
  /** Each socket's srtt is sampled at most this often, and only when it received an ACK since. */
  sampleIntervalMs: number;
  /** Sockets the kernel table holds (kernels that read sockets); what does not fit is counted as map_full. */
  maxTrackedSockets: number;
}

const PER_SEGMENT = 'RTT sampled from received segments (a program runs per segment) instead of read from the sockets';

export const TCP_RTT_HOOKS: readonly HookSpec<TcpRttNames['programs']>[] = [
  ...socketTableHooks<TcpRttNames['programs']>(
    [
      { program: 'rtt_track', requires: [...SOCKET_TABLE, RDONLY_CAST] },
      { program: 'rtt_track__skc_cast', requires: SOCKET_TABLE },
    ],
    'rtt_walk',
    'rtt_adopt',
    'every sampleIntervalMs',
  ),
  {
    hook: 'tp_btf/tcp_probe',
    program: 'tcp_probe',
    attachBySection: true,
    variants: [
      // Not needed where the socket table reads the sockets.
      { program: null, requires: SOCKET_TABLE },
      { program: 'tcp_probe', requires: [SOCKET_CGROUP, PROBE_TRACEPOINT, RDONLY_CAST], degradation: PER_SEGMENT },
      { program: 'tcp_probe__skc_cast', requires: [SOCKET_CGROUP, PROBE_TRACEPOINT], degradation: PER_SEGMENT },
    ],
  },
];

export class TcpRttGroup implements ProbeGroup<TcpRttNames> {
  readonly name = 'tcp-rtt';
  readonly hooks = TCP_RTT_HOOKS;
  readonly objectSpec: ProbeObjectSpec<TcpRttNames>;
  /** `hz`: the per-segment sampler counts windows in jiffies (see bpf/tcp_rtt.bpf.c), and the tick rate turns sampleIntervalMs into them. */
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
        object.setMapMaxEntries(SOCKETS, config.maxTrackedSockets);
      },
    };
  }

  start(loaded: LoadedProbeObject<TcpRttNames>, context: ProbeContext): void {
    if (loaded.loadedPrograms.has('rtt_walk')) this.readSockets(loaded, context);
    else if (this.hz.source === undefined) {
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

  /** Walks the socket table every sampleIntervalMs, and adopts the connections older than the agent. */
  private readSockets(loaded: LoadedProbeObject<TcpRttNames>, context: ProbeContext): void {
    adoptExistingSockets(loaded.object, 'rtt_adopt', context);
    const walk = walker(loaded.object, 'rtt_walk', context, 'RTT is sampled at connection close only');
    const timer = setInterval(walk, this.config.sampleIntervalMs).unref();
    context.onUnload(() => clearInterval(timer));
  }
}

export const tcpRtt = defineProbeGroup<'tcpRtt', TcpRttConfig>({
  name: 'tcp-rtt',
  configKey: 'tcpRtt',
  config: {
    schema: object({
      enabled: COMMON_PROBE_FIELDS.enabled,
      granularity: COMMON_PROBE_FIELDS.granularity,
      sampleIntervalMs: integer(100, 3_600_000, 'milliseconds between RTT samples of one socket'),
      maxRows: COMMON_PROBE_FIELDS.maxRows,
      maxTrackedSockets: integer(16, 1 << 24, 'TCP sockets whose RTT the kernel table follows'),
      idleFlowTimeoutMs: COMMON_PROBE_FIELDS.idleFlowTimeoutMs,
    }),
    defaults: {
      enabled: true,
      granularity: 'pod',
      sampleIntervalMs: 1000,
      maxRows: 4096,
      maxTrackedSockets: 65536,
      idleFlowTimeoutMs: DEFAULT_IDLE_FLOW_TIMEOUT_MS,
    },
  },
  hooks: TCP_RTT_HOOKS,
  withoutIt: 'no round-trip-time histograms (flowtel.tcp.rtt)',
  telemetry: { metrics: [METRIC_TCP_RTT], events: [] },
  needsKernelHz: true,
  trialConfig: (config, rows) => ({ ...config, maxTrackedSockets: Math.min(config.maxTrackedSockets, rows) }),
  build: (config, node) => new TcpRttGroup(config, node.kernelHz),
});
