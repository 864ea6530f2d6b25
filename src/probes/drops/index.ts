/**
 * drops: packets the kernel freed with a drop reason (tp_btf/kfree_skb), per
 * local endpoint and reason, plus a rate-limited log record with the packet's
 * addresses and the kernel function that dropped it. Reason names and values
 * come from the running kernel's BTF (enum skb_drop_reason), so the numbering
 * of this kernel is the one used.
 */
import os from 'node:os';
import type { HookSpec } from '../../bpf/hooks';
import type { DropsNames } from '../../bpf/objects.generated';
import type { LoadedProbeObject, ProbeObjectSpec } from '../../bpf/runtime';
import { nativeAddon } from '../../bpf/native';
import {
  ATTR_DESTINATION_ADDRESS,
  ATTR_DESTINATION_PORT,
  ATTR_FLOWTEL_DROP_LOCATION,
  ATTR_FLOWTEL_DROP_REASON,
  ATTR_FLOWTEL_PACKET_LENGTH,
  ATTR_NETWORK_TRANSPORT,
  ATTR_NETWORK_TYPE,
  ATTR_SOURCE_ADDRESS,
  ATTR_SOURCE_PORT,
  EVENT_NETWORK_DROP,
  METRIC_NETWORK_DROPPED_BYTES,
  METRIC_NETWORK_DROPS,
} from '../../semconv';
import { object, string, stringList } from '../../config/schema';
import { DEFAULT_IDLE_FLOW_TIMEOUT_MS, EVENT_PROBE_FIELDS, type EventProbeConfig } from '../config';
import { defineProbeGroup } from '../declaration';
import { EndpointCounterTable } from '../../tables/endpoint-counters';
import { EnumNames } from '../shared/enum-names';
import { EventReader, socketTupleSummary } from '../../events/event-endpoint';
import { u32 } from '../../bpf/le-bytes';
import { ephemeralPorts, setCommonGlobals } from '../shared/globals';
import { counterSums } from '../../tables/instruments';
import type { RepeatableEvent } from '../../events/event-aggregator';
import type { ProbeContext, ProbeGroup } from '../types';
import { KernelSymbols } from './kallsyms';
import { SOCKET_CGROUP, tracepoint } from '../shared/kernel-requirements';

/** Before 5.17 kfree_skb passes no reason, and a drop cannot be told from a free: no program for that. */
export const DROPS_HOOKS: readonly HookSpec<DropsNames['programs']>[] = [
  {
    hook: 'tp_btf/kfree_skb',
    program: 'kfree_skb',
    attachBySection: true,
    variants: [
      { program: 'kfree_skb', requires: [SOCKET_CGROUP, tracepoint('kfree_skb', 4, '6.11', 'rx_sk')] },
      {
        program: 'kfree_skb__no_rx_sk',
        requires: [SOCKET_CGROUP, tracepoint('kfree_skb', 3, '5.17', 'reason')],
        degradation: "a received packet dropped before it reached its socket is attributed to its pod's network namespace, not to the socket's container",
      },
    ],
  },
];

export interface DropsConfig extends EventProbeConfig {
  /** Reason names (without SKB_DROP_REASON_) to count; empty = all but denyReasons. */
  allowReasons: string[];
  denyReasons: string[];
}

const MAP = 'drops_count';
const FILTER = 'drops_reason_filter';
const TRANSPORTS: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmp' };

export interface ReasonSelection {
  /** The reason values to count. */
  values: number[];
  /** Configured names this kernel does not have: each a warning, ignored (a list written for all nodes names reasons of newer kernels). */
  unknown: Array<{ field: string; name: string }>;
}

/** The reason values to count: allow (all when empty) minus deny, over the names this kernel has. */
export function selectedReasons(reasons: EnumNames, config: Pick<DropsConfig, 'allowReasons' | 'denyReasons'>): ReasonSelection {
  const known = [...reasons.values.keys()].filter((n) => n !== 'MAX');
  const unknown: ReasonSelection['unknown'] = [];
  const check = (field: string, list: string[]) =>
    list.filter((name, i) => {
      if (reasons.values.has(name)) return true;
      unknown.push({ field: `probes.drops.${field}[${i}]`, name });
      return false;
    });
  const allow = check('allowReasons', config.allowReasons);
  const denied = new Set(check('denyReasons', config.denyReasons));
  // An allow list whose names this kernel all lacks counts nothing, not everything.
  const allowed = config.allowReasons.length ? allow : known;
  return { values: allowed.filter((n) => !denied.has(n)).map((n) => reasons.values.get(n) as number), unknown };
}

/** The warning for a configured reason this kernel lacks (the agent logs it at start; `validate` prints it). */
export function unknownReasonWarning({ field, name }: { field: string; name: string }): string {
  return `${field}: ${name} is not a drop reason of this kernel (${os.release()}); it is ignored here`;
}

/** Warnings for the configured reasons this kernel lacks; none when it has no drop reasons (before 5.17) or no BTF to read them from. */
export function dropReasonWarnings(config: Pick<DropsConfig, 'allowReasons' | 'denyReasons'>): string[] {
  let names: Record<string, number>;
  try {
    names = nativeAddon().kernelEnum('skb_drop_reason');
  } catch {
    return [];
  }
  if (Object.keys(names).length === 0) return [];
  return selectedReasons(new EnumNames(names, 'SKB_DROP_REASON_'), config).unknown.map(unknownReasonWarning);
}

export class DropsGroup implements ProbeGroup<DropsNames> {
  readonly name = 'drops';
  readonly hooks = DROPS_HOOKS;
  readonly objectSpec: ProbeObjectSpec<DropsNames>;
  private readonly reasons: EnumNames;
  private readonly selection: ReasonSelection;
  readonly configDegradations: readonly string[];
  private readonly symbols = new KernelSymbols();

  constructor(config: DropsConfig) {
    this.reasons = new EnumNames(nativeAddon().kernelEnum('skb_drop_reason'), 'SKB_DROP_REASON_');
    this.selection = selectedReasons(this.reasons, config);
    const selected = this.selection.values;
    const nothing = config.allowReasons.length
      ? `none of probes.drops.allowReasons (${config.allowReasons.join(', ')}) is a drop reason of this kernel that denyReasons leaves`
      : 'probes.drops.denyReasons denies every drop reason of this kernel';
    this.configDegradations = selected.length ? [] : [`counts no drop: ${nothing}`];
    this.objectSpec = {
      group: this.name,
      objectFile: 'drops.bpf.o',
      hooks: DROPS_HOOKS,
      configure: (object) => {
        setCommonGlobals(object, config);
        object.setMapMaxEntries(MAP, config.maxRows);
      },
      afterLoad: (object) => {
        const limit = object.mapInfo(FILTER).maxEntries;
        for (const value of selected) if (value < limit) object.mapUpdate(FILTER, u32(value), Buffer.from([1]));
      },
    };
  }

  start(loaded: LoadedProbeObject<DropsNames>, context: ProbeContext): void {
    const { runtime, attribution } = context;
    const reasons = this.reasons;
    for (const unknown of this.selection.unknown) context.log.warn(unknownReasonWarning(unknown), { field: unknown.field, value: unknown.name });
    const table = new EndpointCounterTable({
      object: loaded.object,
      mapName: MAP,
      keyStruct: 'drops_key',
      valueStruct: 'drops_value',
      fields: ['packets', 'bytes'] as const,
      keyFields: ['reason'],
      describe: (key) => {
        const reason = key.uint('reason');
        return { key: String(reason), attributes: { [ATTR_FLOWTEL_DROP_REASON]: reasons.name(reason) } };
      },
      attribution,
      possibleCpus: runtime.possibleCpus,
      ...context.rowLifetime,
    });
    context.series.register(() =>
      counterSums(table.collect(), [
        [METRIC_NETWORK_DROPS, 'packets'],
        [METRIC_NETWORK_DROPPED_BYTES, 'bytes'],
      ]),
    );

    const symbols = this.symbols;
    symbols.load();
    context.onUnload(() => symbols.close());
    const reader = new EventReader(loaded.object, 'drop_event', ['reason', 'location', 'length', 'tuple_valid', 'tuple.protocol'] as const);
    const ports = ephemeralPorts();
    const kind = loaded.object.objectEnum('flowtel_event_kind').FLOWTEL_EVENT_DROP;
    const build = (buf: Buffer, offset: number): RepeatableEvent => {
      const reason = reasons.name(reader.fields.uint(buf, offset, 'reason'));
      const location = symbols.symbolize(reader.fields.bigint(buf, offset, 'location'));
      const eventName = EVENT_NETWORK_DROP;
      const kernelTimeNs = reader.timestamp(buf, offset);
      const common = {
        ...reader.endpointAttributes(buf, offset, attribution),
        [ATTR_FLOWTEL_DROP_REASON]: reason,
        [ATTR_FLOWTEL_DROP_LOCATION]: location,
        [ATTR_FLOWTEL_PACKET_LENGTH]: reader.fields.uint(buf, offset, 'length'),
      };
      if (!reader.fields.uint(buf, offset, 'tuple_valid')) {
        const text = `packet dropped (${reason}) in ${location}`;
        return { eventName, kernelTimeNs, body: text, pattern: text, attributes: common, varying: [ATTR_FLOWTEL_PACKET_LENGTH] };
      }
      // Packet order: "local" is the source, "peer" the destination.
      const tuple = reader.tuple.decode(buf, offset);
      const protocol = reader.fields.uint(buf, offset, 'tuple.protocol');
      // One literal, not Object.assign onto `common`: adding six more computed keys to an object
      // that already has ten took V8's slow path: 13 -> 8 us of this function's own time per event.
      const attributes = {
        ...common,
        [ATTR_NETWORK_TYPE]: tuple.family,
        [ATTR_NETWORK_TRANSPORT]: TRANSPORTS[protocol] ?? `ipproto-${protocol}`,
        [ATTR_SOURCE_ADDRESS]: tuple.localAddress,
        [ATTR_SOURCE_PORT]: tuple.localPort,
        [ATTR_DESTINATION_ADDRESS]: tuple.peerAddress,
        [ATTR_DESTINATION_PORT]: tuple.peerPort,
      };
      const summary = socketTupleSummary(tuple, ports, { local: ATTR_SOURCE_PORT, peer: ATTR_DESTINATION_PORT });
      return {
        eventName,
        kernelTimeNs,
        body: `packet ${tuple.localAddress}:${tuple.localPort} -> ${tuple.peerAddress}:${tuple.peerPort} dropped (${reason}) in ${location}`,
        pattern: `packet ${summary.local} -> ${summary.peer} dropped (${reason}) in ${location}`,
        attributes,
        varying: [ATTR_FLOWTEL_PACKET_LENGTH, ...summary.varying],
      };
    };
    context.onEvent(kind, (buf, offset) => {
      // Repeats: same endpoint, reason, dropping function and packet tuple (the client's port aside).
      const key =
        `${reader.endpointKey(buf, offset)}|${reader.fields.uint(buf, offset, 'reason')}|${reader.fields.keyPart(buf, offset, 'location')}|` +
        (reader.fields.uint(buf, offset, 'tuple_valid')
          ? `${reader.fields.uint(buf, offset, 'tuple.protocol')}|${reader.tuple.repeatKey(buf, offset, ports)}`
          : '');
      context.events.offer(key, reader.timestamp(buf, offset), build, buf, offset);
    });
  }
}

export const drops = defineProbeGroup<'drops', DropsConfig>({
  name: 'drops',
  configKey: 'drops',
  config: {
    schema: object({
      ...EVENT_PROBE_FIELDS,
      allowReasons: stringList(string({ pattern: /^[A-Z0-9_]+$/, expected: 'a drop reason name such as NETFILTER_DROP' })),
      denyReasons: stringList(string({ pattern: /^[A-Z0-9_]+$/, expected: 'a drop reason name such as NOT_SPECIFIED' })),
    }),
    defaults: {
      enabled: true,
      granularity: 'pod',
      maxEventsPerSecondPerCpu: 100,
      maxRows: 16384,
      idleFlowTimeoutMs: DEFAULT_IDLE_FLOW_TIMEOUT_MS,
      allowReasons: [],
      // QUEUE_PURGE: a socket freeing its own queues at close, not a network drop (one per closed connection).
      denyReasons: ['NOT_SPECIFIED', 'QUEUE_PURGE'],
    },
  },
  hooks: DROPS_HOOKS,
  withoutIt: 'no dropped packets by kernel reason (flowtel.network.drops) and no drop log records',
  telemetry: { metrics: [METRIC_NETWORK_DROPS, METRIC_NETWORK_DROPPED_BYTES], events: [EVENT_NETWORK_DROP] },
  configWarnings: dropReasonWarnings,
  build: (config) => new DropsGroup(config),
});
