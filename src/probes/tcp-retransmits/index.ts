/**
 * tcp-retransmits: retransmitted segments per local endpoint (per flow at
 * flow granularity) from tp_btf/tcp_retransmit_skb, as ObservableCounters fed
 * from the kernel map, plus a log record per (rate-limited) retransmission
 * with the connection's 5-tuple.
 */
import type { HookSpec } from '../../bpf/hooks';
import type { TcpRetransmitsNames } from '../../bpf/objects.generated';
import type { LoadedProbeObject, ProbeObjectSpec } from '../../bpf/runtime';
import {
  ATTR_FLOWTEL_TCP_SEGMENTS,
  ATTR_FLOWTEL_TCP_STATE,
  ATTR_NETWORK_TRANSPORT,
  EVENT_TCP_RETRANSMIT,
  METRIC_TCP_RETRANSMIT_EVENTS,
  METRIC_TCP_RETRANSMITS,
} from '../../semconv';
import { eventProbeConfig, type EventProbeConfig } from '../config';
import { defineProbeGroup } from '../declaration';
import { EndpointCounterTable } from '../../tables/endpoint-counters';
import { EventReader, socketTupleAttributes, socketTupleSummary } from '../../events/event-endpoint';
import { ephemeralPorts, setCommonGlobals } from '../shared/globals';
import { counterSums } from '../../tables/instruments';
import { tcpStateNames } from '../shared/tcp-states';
import type { RepeatableEvent } from '../../events/event-aggregator';
import type { ProbeContext, ProbeGroup } from '../types';
import { SOCKET_CGROUP, tracepoint } from '../shared/kernel-requirements';

const MAP = 'tcp_retransmits_by_cgroup';

/**
 * From 6.17 the tracepoint fires for failed retransmits too and says so (err); before, it fires only for
 * retransmits that were sent, which is what both programs count: not a degradation.
 */
export const TCP_RETRANSMITS_HOOKS: readonly HookSpec<TcpRetransmitsNames['programs']>[] = [
  {
    hook: 'tp_btf/tcp_retransmit_skb',
    program: 'tcp_retransmit_skb',
    attachBySection: true,
    variants: [
      { program: 'tcp_retransmit_skb', requires: [SOCKET_CGROUP, tracepoint('tcp_retransmit_skb', 3, '6.17', 'err')] },
      { program: 'tcp_retransmit_skb__sent', requires: [SOCKET_CGROUP, tracepoint('tcp_retransmit_skb', 2, '4.15')] },
    ],
  },
];

export class TcpRetransmitsGroup implements ProbeGroup<TcpRetransmitsNames> {
  readonly name = 'tcp-retransmits';
  readonly hooks = TCP_RETRANSMITS_HOOKS;
  readonly objectSpec: ProbeObjectSpec<TcpRetransmitsNames>;

  constructor(config: EventProbeConfig) {
    this.objectSpec = {
      group: this.name,
      objectFile: 'tcp_retransmits.bpf.o',
      hooks: TCP_RETRANSMITS_HOOKS,
      configure: (object) => {
        setCommonGlobals(object, config);
        object.setMapMaxEntries(MAP, config.maxRows);
      },
    };
  }

  start(loaded: LoadedProbeObject<TcpRetransmitsNames>, context: ProbeContext): void {
    const { runtime, attribution } = context;
    const table = new EndpointCounterTable({
      object: loaded.object,
      mapName: MAP,
      keyStruct: 'tcp_retransmits_key',
      valueStruct: 'tcp_retransmits_value',
      fields: ['events', 'segments'] as const,
      attribution,
      possibleCpus: runtime.possibleCpus,
      ...context.rowLifetime,
    });
    context.series.register(() =>
      counterSums(table.collect(), [
        [METRIC_TCP_RETRANSMITS, 'segments'],
        [METRIC_TCP_RETRANSMIT_EVENTS, 'events'],
      ]),
    );

    const reader = new EventReader(loaded.object, 'tcp_retransmit_event', ['segments', 'state'] as const);
    const states = tcpStateNames(runtime.native);
    const kind = loaded.object.objectEnum('flowtel_event_kind').FLOWTEL_EVENT_TCP_RETRANSMIT;
    const ports = ephemeralPorts();
    const build = (buf: Buffer, offset: number): RepeatableEvent => {
      const tuple = reader.tuple.decode(buf, offset);
      const count = reader.fields.uint(buf, offset, 'segments');
      const state = states.name(reader.fields.uint(buf, offset, 'state'));
      const summary = socketTupleSummary(tuple, ports);
      return {
        eventName: EVENT_TCP_RETRANSMIT,
        kernelTimeNs: reader.timestamp(buf, offset),
        body: `TCP retransmission ${tuple.localAddress}:${tuple.localPort} -> ${tuple.peerAddress}:${tuple.peerPort} (${count} segment${count === 1 ? '' : 's'}, ${state})`,
        pattern: `TCP retransmission ${summary.local} -> ${summary.peer} (${state})`,
        varying: [ATTR_FLOWTEL_TCP_SEGMENTS, ...summary.varying],
        attributes: {
          ...reader.endpointAttributes(buf, offset, attribution),
          [ATTR_NETWORK_TRANSPORT]: 'tcp',
          ...socketTupleAttributes(tuple, attribution),
          [ATTR_FLOWTEL_TCP_STATE]: state,
          [ATTR_FLOWTEL_TCP_SEGMENTS]: count,
        },
      };
    };
    context.onEvent(kind, (buf, offset) => {
      // Repeats: same endpoint, state and tuple (the client's port aside).
      const key = `${reader.endpointKey(buf, offset)}|${reader.fields.uint(buf, offset, 'state')}|${reader.tuple.repeatKey(buf, offset, ports)}`;
      context.events.offer(key, reader.timestamp(buf, offset), build, buf, offset);
    });
  }
}

export const tcpRetransmits = defineProbeGroup<'tcpRetransmits', EventProbeConfig>({
  name: 'tcp-retransmits',
  configKey: 'tcpRetransmits',
  config: eventProbeConfig(),
  hooks: TCP_RETRANSMITS_HOOKS,
  withoutIt: 'no retransmitted segments (flowtel.tcp.retransmits) and no retransmission log records',
  telemetry: { metrics: [METRIC_TCP_RETRANSMITS, METRIC_TCP_RETRANSMIT_EVENTS], events: [EVENT_TCP_RETRANSMIT] },
  build: (config) => new TcpRetransmitsGroup(config),
});
