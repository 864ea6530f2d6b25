/**
 * flows: bytes and packets per local endpoint and direction from cgroup_skb
 * programs at the cgroup v2 root, exported as k8s.pod.network.io (bytes) and
 * flowtel.pod.network.packets; at flow granularity also per peer address,
 * server port and transport. Traffic of flows that found the kernel map full
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
import { object } from '../../config/schema';
import { COMMON_PROBE_FIELDS, DEFAULT_IDLE_FLOW_TIMEOUT_MS, type CommonProbeConfig } from '../config';
import { defineProbeGroup } from '../declaration';
import { Directions } from '../shared/direction';
import { EndpointCounterTable } from '../../tables/endpoint-counters';
import { setCommonGlobals } from '../shared/globals';
import { seriesOf } from '../../tables/instruments';
import type { NumberSeries } from '../../tables/series';
import type { ProbeContext, ProbeGroup } from '../types';

const MAP = 'flows_by_endpoint';
const OVERFLOW = 'flows_overflow';
const OVERFLOW_NODE = 'flows_overflow_node';

/** cgroup_skb programs with bpf_link (5.7+); attached at the cgroup v2 root by the group itself. */
export type FlowsConfig = CommonProbeConfig;

export const FLOWS_HOOKS: readonly HookSpec<FlowsNames['programs']>[] = [
  { hook: 'cgroup_skb/ingress', program: 'flows_ingress', attachBySection: false, variants: [{ program: 'flows_ingress', requires: [] }] },
  { hook: 'cgroup_skb/egress', program: 'flows_egress', attachBySection: false, variants: [{ program: 'flows_egress', requires: [] }] },
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
      },
      attachCustom: (object) => [object.attachCgroup('flows_ingress', cgroupRoot), object.attachCgroup('flows_egress', cgroupRoot)],
    };
  }

  start(loaded: LoadedProbeObject<FlowsNames>, context: ProbeContext): void {
    const { runtime, attribution } = context;
    const object = loaded.object;
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
    schema: object(COMMON_PROBE_FIELDS),
    defaults: { enabled: true, granularity: 'pod', maxRows: 16384, idleFlowTimeoutMs: DEFAULT_IDLE_FLOW_TIMEOUT_MS },
  },
  hooks: FLOWS_HOOKS,
  withoutIt: 'no bytes and packets per pod (k8s.pod.network.io)',
  telemetry: { metrics: [METRIC_POD_NETWORK_IO, METRIC_POD_NETWORK_PACKETS], events: [] },
  build: (config, node) => new FlowsGroup(config, node.cgroupRoot),
});
