/**
 * tcp-resets: RSTs sent (with the kernel's reason, enum sk_rst_reason) and
 * received, per local endpoint and direction, plus a rate-limited log record
 * per reset. Reason names come from the running kernel's BTF.
 */
import type { HookSpec } from '../../bpf/hooks';
import type { TcpResetsNames } from '../../bpf/objects.generated';
import type { LoadedProbeObject, ProbeObjectSpec } from '../../bpf/runtime';
import {
  ATTR_FLOWTEL_TCP_RESET_REASON,
  ATTR_FLOWTEL_TCP_STATE,
  ATTR_NETWORK_IO_DIRECTION,
  ATTR_NETWORK_TRANSPORT,
  EVENT_TCP_RESET,
  METRIC_TCP_RESETS,
} from '../../semconv';
import { eventProbeConfig, type EventProbeConfig } from '../config';
import { defineProbeGroup } from '../declaration';
import { Directions } from '../shared/direction';
import { EndpointCounterTable } from '../../tables/endpoint-counters';
import { EventReader, socketTupleAttributes, socketTupleSummary } from '../../events/event-endpoint';
import { ephemeralPorts, setCommonGlobals } from '../shared/globals';
import { counterSums } from '../../tables/instruments';
import { EnumNames } from '../shared/enum-names';
import { tcpStateNames } from '../shared/tcp-states';
import type { RepeatableEvent } from '../../events/event-aggregator';
import type { ProbeContext, ProbeGroup } from '../types';
import { SOCKET_CGROUP, tracepoint } from '../shared/kernel-requirements';

const MAP = 'tcp_resets_count';
/** The reason of a reset sent on a kernel whose tracepoint does not pass one (before 6.10). */
export const RESET_REASON_UNKNOWN = 'unknown';

export const TCP_RESETS_HOOKS: readonly HookSpec<TcpResetsNames['programs']>[] = [
  {
    hook: 'tp_btf/tcp_send_reset',
    program: 'tcp_send_reset',
    attachBySection: true,
    variants: [
      { program: 'tcp_send_reset', requires: [SOCKET_CGROUP, tracepoint('tcp_send_reset', 3, '6.10', 'the reset reason')] },
      {
        program: 'tcp_send_reset__no_reason',
        requires: [SOCKET_CGROUP, tracepoint('tcp_send_reset', 2, '4.15')],
        degradation:
          'resets sent have no reason (flowtel.tcp.reset.reason=unknown), and those answering a segment that has no full socket ' +
          '(a closed port, a TIME_WAIT or request socket) are not seen',
      },
    ],
  },
  {
    hook: 'tp_btf/tcp_receive_reset',
    program: 'tcp_receive_reset',
    attachBySection: true,
    variants: [{ program: 'tcp_receive_reset', requires: [SOCKET_CGROUP, tracepoint('tcp_receive_reset', 1, '4.15')] }],
  },
];

export class TcpResetsGroup implements ProbeGroup<TcpResetsNames> {
  readonly name = 'tcp-resets';
  readonly hooks = TCP_RESETS_HOOKS;
  readonly objectSpec: ProbeObjectSpec<TcpResetsNames>;

  constructor(config: EventProbeConfig) {
    this.objectSpec = {
      group: this.name,
      objectFile: 'tcp_resets.bpf.o',
      hooks: TCP_RESETS_HOOKS,
      configure: (object) => {
        setCommonGlobals(object, config);
        object.setMapMaxEntries(MAP, config.maxRows);
      },
    };
  }

  start(loaded: LoadedProbeObject<TcpResetsNames>, context: ProbeContext): void {
    const { runtime, attribution } = context;
    const directions = new Directions(loaded.object);
    // Before 6.10 the tracepoint passes no reason (the no_reason variant runs) and the kernel has no enum sk_rst_reason.
    const withReason = loaded.programs.some((p) => p.program === 'tcp_send_reset');
    const reasons = withReason ? new EnumNames(runtime.native.kernelEnum('sk_rst_reason'), 'SK_RST_REASON_') : { name: () => RESET_REASON_UNKNOWN };
    const groupAttributes = (direction: number, reason: number) => {
      const dir = directions.name(direction);
      return dir === 'transmit'
        ? { [ATTR_NETWORK_IO_DIRECTION]: dir, [ATTR_FLOWTEL_TCP_RESET_REASON]: reasons.name(reason) }
        : { [ATTR_NETWORK_IO_DIRECTION]: dir ?? 'unknown' };
    };
    const table = new EndpointCounterTable({
      object: loaded.object,
      mapName: MAP,
      keyStruct: 'tcp_resets_key',
      fields: ['value'] as const,
      keyFields: ['direction', 'reason'],
      describe: (key) => {
        const direction = key.uint('direction');
        const reason = key.uint('reason');
        return { key: `${direction}/${reason}`, attributes: groupAttributes(direction, reason) };
      },
      attribution,
      possibleCpus: runtime.possibleCpus,
      ...context.rowLifetime,
    });
    context.series.register(() => counterSums(table.collect(), [[METRIC_TCP_RESETS, 'value']]));

    const reader = new EventReader(loaded.object, 'tcp_reset_event', ['direction', 'reason', 'state'] as const);
    const states = tcpStateNames(runtime.native);
    const kind = loaded.object.objectEnum('flowtel_event_kind').FLOWTEL_EVENT_TCP_RESET;
    const ports = ephemeralPorts();
    const build = (buf: Buffer, offset: number): RepeatableEvent => {
      const tuple = reader.tuple.decode(buf, offset);
      const direction = reader.fields.uint(buf, offset, 'direction');
      const reason = reader.fields.uint(buf, offset, 'reason');
      const state = reader.fields.uint(buf, offset, 'state');
      const sent = directions.name(direction) === 'transmit';
      const summary = socketTupleSummary(tuple, ports);
      const describe = (local: string, peer: string) =>
        sent ? `TCP reset sent ${local} -> ${peer} (${reasons.name(reason)})` : `TCP reset received on ${local} from ${peer}`;
      return {
        eventName: EVENT_TCP_RESET,
        kernelTimeNs: reader.timestamp(buf, offset),
        body: describe(`${tuple.localAddress}:${tuple.localPort}`, `${tuple.peerAddress}:${tuple.peerPort}`),
        pattern: describe(summary.local, summary.peer),
        varying: summary.varying,
        attributes: {
          ...reader.endpointAttributes(buf, offset, attribution),
          [ATTR_NETWORK_TRANSPORT]: 'tcp',
          ...socketTupleAttributes(tuple, attribution),
          ...groupAttributes(direction, reason),
          ...(state ? { [ATTR_FLOWTEL_TCP_STATE]: states.name(state) } : {}),
        },
      };
    };
    context.onEvent(kind, (buf, offset) => {
      // Repeats: same endpoint, direction, reason, state and tuple (the client's port aside).
      const key =
        `${reader.endpointKey(buf, offset)}|${reader.fields.uint(buf, offset, 'direction')}|${reader.fields.uint(buf, offset, 'reason')}|` +
        `${reader.fields.uint(buf, offset, 'state')}|${reader.tuple.repeatKey(buf, offset, ports)}`;
      context.events.offer(key, reader.timestamp(buf, offset), build, buf, offset);
    });
  }
}

export const tcpResets = defineProbeGroup<'tcpResets', EventProbeConfig>({
  name: 'tcp-resets',
  configKey: 'tcpResets',
  config: eventProbeConfig(),
  hooks: TCP_RESETS_HOOKS,
  withoutIt: 'no resets sent or received (flowtel.tcp.resets) and no reset log records',
  telemetry: { metrics: [METRIC_TCP_RESETS], events: [EVENT_TCP_RESET] },
  build: (config) => new TcpResetsGroup(config),
});
