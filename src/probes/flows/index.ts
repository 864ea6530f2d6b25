/**
 * flows: bytes and packets per local endpoint and direction, exported as
 * k8s.pod.network.io (bytes) and flowtel.pod.network.packets; at flow
 * granularity also per peer address, server port and transport. TCP comes
 * from each socket's own counters where the kernel can walk a map (a socket
 * table, read before each collection), else from cgroup_skb programs at the
 * cgroup v2 root, which also count the other protocols when the config asks
 * (see bpf/flows.bpf.c). Traffic of flows that found the kernel map full
 * is exported on the pod's series marked otel.metric.overflow=true (the SDK's
 * own convention for series beyond a cardinality limit), or, if even that map
 * was full, under flowtel.attribution=overflow: pod and node totals stay whole.
 */
import type { HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import type { HookSpec } from '../../bpf/hooks';
import type { FlowsNames } from '../../bpf/objects.generated';
import type { LoadedProbeObject, ProbeObjectSpec } from '../../bpf/runtime';
import { sumPerCpu, StructReader } from '../../bpf/struct-reader';
import {
  ATTR_FLOWTEL_ATTRIBUTION,
  ATTR_K8S_NODE_NAME,
  ATTR_NETWORK_IO_DIRECTION,
  ATTRIBUTION_OVERFLOW,
  ATTR_OTEL_METRIC_OVERFLOW,
  METRIC_POD_NETWORK_IO,
  METRIC_POD_NETWORK_PACKETS,
} from '../../semconv';
import { boolean, described, integer, object } from '../../config/schema';
import { COMMON_PROBE_FIELDS, DEFAULT_IDLE_FLOW_TIMEOUT_MS, type CommonProbeConfig } from '../config';
import { defineProbeGroup } from '../declaration';
import { Directions } from '../shared/direction';
import { EndpointCounterTable } from '../../tables/endpoint-counters';
import { setCommonGlobals } from '../shared/globals';
import { SOCKET_TABLE, socketTableHooks } from '../shared/kernel-requirements';
import { adoptExistingSockets, walker } from '../shared/socket-table';
import { seriesOf } from '../../tables/instruments';
import type { NumberSeries } from '../../tables/series';
import type { ProbeContext, ProbeGroup } from '../types';

const MAP = 'flows_by_endpoint';
const OVERFLOW = 'flows_overflow';
const OVERFLOW_NODE = 'flows_overflow_node';
const SOCKETS = 'flows_sockets';

export interface FlowsConfig extends CommonProbeConfig {
  /**
   * Count UDP, ICMP and every other protocol but TCP too: a cgroup_skb program then runs for every packet of
   * every pod (and, where TCP cannot come from the sockets, it runs anyway).
   */
  nonTcpPackets: boolean;
  /** TCP sockets the kernel table holds (kernels that read sockets); what does not fit is counted as map_full. */
  maxTrackedSockets: number;
}

const PER_PACKET = 'TCP counted per packet (IP bytes, a program on every packet) instead of from the sockets';

/** cgroup_skb programs with bpf_link (5.7+), attached at the cgroup v2 root by the group itself. */
export const FLOWS_HOOKS: readonly HookSpec<FlowsNames['programs']>[] = [
  ...socketTableHooks<FlowsNames['programs']>([{ program: 'flows_track', requires: SOCKET_TABLE }], 'flows_walk', 'flows_adopt', 'before each collection'),
  {
    hook: 'cgroup_skb/ingress',
    program: 'flows_ingress',
    attachBySection: false,
    variants: [
      { program: 'flows_ingress_other', requires: SOCKET_TABLE },
      { program: 'flows_ingress', requires: [], degradation: PER_PACKET },
    ],
  },
  {
    hook: 'cgroup_skb/egress',
    program: 'flows_egress',
    attachBySection: false,
    variants: [
      { program: 'flows_egress_other', requires: SOCKET_TABLE },
      { program: 'flows_egress', requires: [] },
    ],
  },
];

export class FlowsGroup implements ProbeGroup<FlowsNames> {
  readonly name = 'flows';
  readonly hooks = FLOWS_HOOKS;
  readonly objectSpec: ProbeObjectSpec<FlowsNames>;

  constructor(config: FlowsConfig, cgroupRoot: string) {
    this.objectSpec = {
      group: this.name,
      objectFile: 'flows.bpf.o',
      hooks: FLOWS_HOOKS,
      configure: (object) => {
        setCommonGlobals(object, { granularity: config.granularity });
        object.setMapMaxEntries(MAP, config.maxRows);
        object.setMapMaxEntries(SOCKETS, config.maxTrackedSockets);
      },
      attachCustom: (object, loaded) => {
        // Per packet: TCP where the sockets cannot tell (5.10), other protocols only when asked.
        if (loaded.has('flows_ingress')) return [object.attachCgroup('flows_ingress', cgroupRoot), object.attachCgroup('flows_egress', cgroupRoot)];
        if (!config.nonTcpPackets) return [];
        return [object.attachCgroup('flows_ingress_other', cgroupRoot), object.attachCgroup('flows_egress_other', cgroupRoot)];
      },
    };
  }

  start(loaded: LoadedProbeObject<FlowsNames>, context: ProbeContext): void {
    const { runtime, attribution } = context;
    const object = loaded.object;
    let walk = (): number | undefined => undefined;
    if (loaded.loadedPrograms.has('flows_walk')) {
      adoptExistingSockets(object, 'flows_adopt', context);
      walk = walker(object, 'flows_walk', context, 'TCP bytes of open connections are counted at their close only');
    }
    const directions = new Directions(object);
    // The flows map and the per-pod overflow map share a layout; overflow rows are marked as such.
    const directionTable = (mapName: FlowsNames['maps'], marker: Record<string, boolean>) =>
      new EndpointCounterTable({
        object,
        mapName,
        keyStruct: 'flows_key',
        valueStruct: 'flows_value',
        fields: ['bytes', 'packets'] as const,
        keyFields: ['direction'],
        describe: (key) => {
          const direction = directions.name(key.uint('direction'));
          return direction ? { key: direction, attributes: { [ATTR_NETWORK_IO_DIRECTION]: direction, ...marker } } : undefined;
        },
        attribution,
        possibleCpus: runtime.possibleCpus,
        ...context.rowLifetime,
      });
    const table = directionTable(MAP, {});
    const overflowTable = directionTable(OVERFLOW, { [ATTR_OTEL_METRIC_OVERFLOW]: true });
    const overflowValue = new StructReader('flows_value', object.structLayout('flows_value'), ['bytes', 'packets']);
    const nodeName = context.attribution.nodeName;
    // The node's overflow counters count from the moment the programs were attached.
    const overflowStart = hrTime();
    context.series.register(() => {
      // The sockets' growth since the last walk, into the rows about to be read.
      walk();
      const rows = [table.collect(), overflowTable.collect()];
      const bytes: Array<NumberSeries & { startTime: HrTime }> = [];
      const packets: Array<NumberSeries & { startTime: HrTime }> = [];
      const overflow = object.mapReadAll(OVERFLOW_NODE);
      const cpus = runtime.possibleCpus;
      for (let i = 0; i < overflow.count; i++) {
        const direction = directions.name(overflow.keys.readUInt32LE(i * overflow.keySize));
        if (!direction) continue;
        const base = i * overflow.valueStride;
        const stride = overflow.valueStride / cpus;
        const attributes = { [ATTR_K8S_NODE_NAME]: nodeName, [ATTR_FLOWTEL_ATTRIBUTION]: ATTRIBUTION_OVERFLOW, [ATTR_NETWORK_IO_DIRECTION]: direction };
        const key = `overflow|${direction}`;
        bytes.push({ key, attributes, startTime: overflowStart, value: sumPerCpu(overflow.values, base + overflowValue.member('bytes').offset, cpus, stride) });
        packets.push({
          key,
          attributes,
          startTime: overflowStart,
          value: sumPerCpu(overflow.values, base + overflowValue.member('packets').offset, cpus, stride),
        });
      }
      return {
        sums: [
          { metric: METRIC_POD_NETWORK_IO, monotonic: true, series: seriesOf(rows, 'bytes', bytes) },
          { metric: METRIC_POD_NETWORK_PACKETS, monotonic: true, series: seriesOf(rows, 'packets', packets) },
        ],
      };
    });
  }
}

export const flows = defineProbeGroup<'flows', FlowsConfig>({
  name: 'flows',
  configKey: 'flows',
  config: {
    schema: object({
      ...COMMON_PROBE_FIELDS,
      nonTcpPackets: described(boolean(), 'count UDP and other non-TCP traffic too, by a program on every packet'),
      maxTrackedSockets: integer(16, 1 << 24, 'TCP sockets whose counters the kernel table follows'),
    }),
    defaults: {
      enabled: true,
      granularity: 'pod',
      maxRows: 16384,
      idleFlowTimeoutMs: DEFAULT_IDLE_FLOW_TIMEOUT_MS,
      nonTcpPackets: false,
      maxTrackedSockets: 65536,
    },
  },
  hooks: FLOWS_HOOKS,
  withoutIt: 'no bytes and packets per pod (k8s.pod.network.io)',
  telemetry: { metrics: [METRIC_POD_NETWORK_IO, METRIC_POD_NETWORK_PACKETS], events: [] },
  trialConfig: (config, rows) => ({ ...config, maxTrackedSockets: Math.min(config.maxTrackedSockets, rows) }),
  build: (config, node) => new FlowsGroup(config, node.cgroupRoot),
});
