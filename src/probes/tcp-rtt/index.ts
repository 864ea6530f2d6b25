/**
 * tcp-rtt: the smoothed RTT of sockets receiving data (tp_btf/tcp_probe),
 * sampled in the kernel (each socket at most once per sampleIntervalMs)
 * into quarter-octave histograms per local endpoint
 * (per flow at flow granularity), exported as an explicit-bucket histogram in
 * seconds whose boundaries are the kernel's bucket bounds.
 */
import type { LoadedProbeObject, ProbeObjectSpec } from '../../bpf/runtime';
import { METRIC_TCP_RTT } from '../../semconv';
import type { TcpRttConfig } from '../config';
import { u64 } from '../../bpf/le-bytes';
import { setCommonGlobals } from '../shared/globals';
import { KernelHistogramTable, kernelBoundaries } from '../shared/kernel-histogram';
import type { ProbeContext, ProbeGroup } from '../types';

const MAP = 'tcp_rtt_histograms';

/** 16 µs to ~16.8 s in quarter octaves. */
export const RTT_BOUNDARIES_S = kernelBoundaries(16, 2 ** 24, 1e-6);

export class TcpRttGroup implements ProbeGroup {
  readonly name = 'tcp-rtt';
  readonly hooks = ['tp_btf/tcp_probe'] as const;
  readonly objectSpec: ProbeObjectSpec;
  private stopCallback: (() => void) | undefined;

  constructor(config: TcpRttConfig) {
    this.objectSpec = {
      group: this.name,
      objectFile: 'tcp_rtt.bpf.o',
      programs: ['tcp_probe'],
      configure: (object) => {
        setCommonGlobals(object, { granularity: config.granularity });
        object.setGlobal('tcp_rtt_sample_interval_ns', u64(config.sampleIntervalMs * 1_000_000));
        object.setMapMaxEntries(MAP, config.maxRows);
      },
    };
  }

  start(loaded: LoadedProbeObject, context: ProbeContext): void {
    const table = new KernelHistogramTable({
      object: loaded.object,
      mapName: MAP,
      keyStruct: 'tcp_rtt_key',
      attribution: context.attribution,
      boundaries: RTT_BOUNDARIES_S,
      scale: 1e-6,
      gracePeriodMs: context.cgroupGracePeriodMs,
    });
    this.stopCallback = context.series.register(() => ({
      histograms: [{ metric: METRIC_TCP_RTT, boundaries: RTT_BOUNDARIES_S, series: table.collect() }],
    }));
  }

  stop(): void {
    this.stopCallback?.();
    this.stopCallback = undefined;
  }
}
