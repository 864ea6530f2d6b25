/**
 * tcp-retransmits: retransmitted segments per pod from tp_btf/tcp_retransmit_skb,
 * as an ObservableCounter fed from the kernel map, plus a log record per
 * (rate-limited) retransmission with the connection's 5-tuple.
 */
import type { BatchObservableCallback } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import type { LoadedProbeObject, ProbeObjectSpec } from '../../bpf/runtime';
import {
  ATTR_FLOWTEL_CGROUP_ID,
  ATTR_FLOWTEL_TCP_SEGMENTS,
  ATTR_FLOWTEL_TCP_STATE,
  ATTR_NETWORK_LOCAL_ADDRESS,
  ATTR_NETWORK_LOCAL_PORT,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_TRANSPORT,
  ATTR_NETWORK_TYPE,
  EVENT_TCP_RETRANSMIT,
  METRIC_TCP_RETRANSMIT_EVENTS,
  METRIC_TCP_RETRANSMITS,
} from '../../semconv';
import { CgroupCounterTable } from '../shared/cgroup-counters';
import { observableCounter } from '../shared/instruments';
import type { ProbeContext, ProbeGroup } from '../types';
import type { TcpRetransmitsConfig } from './config';
import { TcpRetransmitDecoder, type TcpRetransmitEvent } from './decoder';

const MAP = 'tcp_retransmits_by_cgroup';
const PROGRAM = 'tcp_retransmit_skb';

function u64(value: number): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(BigInt(value));
  return buf;
}

export class TcpRetransmitsGroup implements ProbeGroup {
  readonly name = 'tcp-retransmits';
  readonly hooks = ['tp_btf/tcp_retransmit_skb'] as const;
  readonly objectSpec: ProbeObjectSpec;
  private stopCallback: (() => void) | undefined;

  constructor(config: TcpRetransmitsConfig) {
    this.objectSpec = {
      group: this.name,
      objectFile: 'tcp_retransmits.bpf.o',
      programs: [PROGRAM],
      configure: (object) => {
        object.setGlobal('flowtel_events_per_cpu_per_sec', u64(config.maxEventsPerSecondPerCpu));
        object.setMapMaxEntries(MAP, config.maxTrackedCgroups);
      },
    };
  }

  start(loaded: LoadedProbeObject, context: ProbeContext): void {
    const { meter, runtime } = context;
    const table = new CgroupCounterTable({
      object: loaded.object,
      mapName: MAP,
      keyStruct: 'tcp_retransmits_key',
      valueStruct: 'tcp_retransmits_value',
      fields: ['events', 'segments'] as const,
      attribution: context.attribution,
      possibleCpus: runtime.possibleCpus,
      gracePeriodMs: context.cgroupGracePeriodMs,
    });
    const segments = observableCounter(meter, METRIC_TCP_RETRANSMITS);
    const events = observableCounter(meter, METRIC_TCP_RETRANSMIT_EVENTS);
    const observe: BatchObservableCallback = (observer) => {
      for (const row of table.collect()) {
        observer.observe(segments, row.totals.segments, row.endpoint.attributes);
        observer.observe(events, row.totals.events, row.endpoint.attributes);
      }
    };
    meter.addBatchObservableCallback(observe, [segments, events]);
    this.stopCallback = () => meter.removeBatchObservableCallback(observe, [segments, events]);

    const decoder = new TcpRetransmitDecoder(loaded.object, runtime.native.kernelEnumWithMember('TCP_ESTABLISHED'));
    const kind = loaded.object.objectEnum('flowtel_event_kind').FLOWTEL_EVENT_TCP_RETRANSMIT;
    runtime.onEvent(kind, (buf, offset) => this.emit(decoder.decode(buf, offset), context));
  }

  stop(): void {
    this.stopCallback?.();
    this.stopCallback = undefined;
  }

  private emit(event: TcpRetransmitEvent, context: ProbeContext): void {
    const endpoint = context.attribution.resolve(event.cgroupId);
    const { tuple } = event;
    context.logger.emit({
      eventName: EVENT_TCP_RETRANSMIT,
      timestamp: context.clock.toHrTime(event.timestampNs),
      severityNumber: SeverityNumber.WARN,
      severityText: 'WARN',
      body: `TCP retransmission ${tuple.localAddress}:${tuple.localPort} -> ${tuple.peerAddress}:${tuple.peerPort} (${event.segments} segment${event.segments === 1 ? '' : 's'}, ${event.state})`,
      attributes: {
        ...endpoint.attributes,
        [ATTR_NETWORK_TRANSPORT]: 'tcp',
        [ATTR_NETWORK_TYPE]: tuple.family,
        [ATTR_NETWORK_LOCAL_ADDRESS]: tuple.localAddress,
        [ATTR_NETWORK_LOCAL_PORT]: tuple.localPort,
        [ATTR_NETWORK_PEER_ADDRESS]: tuple.peerAddress,
        [ATTR_NETWORK_PEER_PORT]: tuple.peerPort,
        [ATTR_FLOWTEL_TCP_STATE]: event.state,
        [ATTR_FLOWTEL_TCP_SEGMENTS]: event.segments,
        [ATTR_FLOWTEL_CGROUP_ID]: event.cgroupId.toString(),
      },
    });
  }
}
