/**
 * tcp-connections: the connection life cycle from inet_sock_set_state.
 * Counters (opens, failures by error.type, closes, bytes at close), live
 * sockets by network.connection.state (kernel deltas on top of the sockets
 * that existed at start), handshake and connection-duration histograms, and
 * a log record per failed connection.
 */
import type { Attributes } from '@opentelemetry/api';
import type { LoadedProbeObject, ProbeObjectSpec } from '../../bpf/runtime';
import type { EndpointRef } from '../../k8s/attribution';
import {
  ATTR_ERROR_TYPE,
  ATTR_FLOWTEL_TCP_CONNECT_DURATION_MS,
  ATTR_FLOWTEL_TCP_ROLE,
  ATTR_NETWORK_CONNECTION_STATE,
  ATTR_NETWORK_IO_DIRECTION,
  ATTR_NETWORK_TRANSPORT,
  EVENT_TCP_CONNECTION_FAILURE,
  METRIC_TCP_CONNECTIONS,
  METRIC_TCP_CONNECTION_BYTES,
  METRIC_TCP_CONNECTION_CLOSES,
  METRIC_TCP_CONNECTION_DURATION,
  METRIC_TCP_CONNECTION_FAILURES,
  METRIC_TCP_CONNECTION_OPENS,
  METRIC_TCP_HANDSHAKE_DURATION,
} from '../../semconv';
import type { EventProbeConfig } from '../config';
import { EndpointCounterTable, type SeriesTotals } from '../shared/endpoint-counters';
import { seriesOf } from '../shared/instruments';
import { seriesKeyOf } from '../shared/row-identity';
import { peerInfo } from '../shared/endpoint-key';
import { EventReader, socketTupleAttributes, socketTupleSummary } from '../shared/event-endpoint';
import { KernelHistogramTable, kernelBoundaries } from '../shared/kernel-histogram';
import type { NumberSeries } from '../series';
import { tcpStateNames, type TcpStateNames } from '../shared/tcp-states';
import type { RepeatableEvent } from '../shared/event-aggregator';
import type { ProbeContext, ProbeGroup } from '../types';
import { connectErrorType } from './error-type';
import { existingTcpSockets } from './existing-sockets';
import { ephemeralPorts, setCommonGlobals } from '../shared/globals';

const STATS = 'tcp_connections_stats';
/** 16 µs to ~16.8 s in quarter octaves. */
const HANDSHAKE_BOUNDARIES_S = kernelBoundaries(16, 2 ** 24, 1e-6);
/** 1 ms to ~38 h in octaves. */
const DURATION_BOUNDARIES_S = kernelBoundaries(1000, 2 ** 37, 1e-6, 4);
const IPPROTO_TCP = 6;

export class TcpConnectionsGroup implements ProbeGroup {
  readonly name = 'tcp-connections';
  readonly hooks = ['tp_btf/inet_sock_set_state'] as const;
  readonly objectSpec: ProbeObjectSpec;
  private stopCallbacks: Array<() => void> = [];

  constructor(private readonly config: EventProbeConfig) {
    this.objectSpec = {
      group: this.name,
      objectFile: 'tcp_connections.bpf.o',
      programs: ['inet_sock_set_state'],
      configure: (object) => {
        setCommonGlobals(object, config);
        object.setMapMaxEntries(STATS, config.maxRows);
      },
    };
  }

  start(loaded: LoadedProbeObject, context: ProbeContext): void {
    const { runtime, attribution } = context;
    const object = loaded.object;
    const roles = object.objectEnum('tcp_connection_role');
    const stats = object.objectEnum('tcp_connection_stat');
    const roleName = (v: number): string => (v === roles.TCP_ROLE_CLIENT ? 'client' : v === roles.TCP_ROLE_SERVER ? 'server' : 'unknown');
    const states = tcpStateNames(runtime.native);
    const statName = new Map(Object.entries(stats).map(([k, v]) => [v, k]));
    const baseline = this.baseline(context, states);

    const table = new EndpointCounterTable({
      object,
      mapName: STATS,
      keyStruct: 'tcp_connections_key',
      fields: ['value'] as const,
      signed: true,
      keyFields: ['stat', 'role', 'state', 'error'],
      describe: (key) => {
        const stat = statName.get(key.uint('stat')) ?? '';
        const role = roleName(key.uint('role'));
        switch (stat) {
          case 'TCP_STAT_OPENED':
          case 'TCP_STAT_CLOSED':
            return { key: `${stat}/${role}`, tag: stat, attributes: { [ATTR_FLOWTEL_TCP_ROLE]: role } };
          case 'TCP_STAT_FAILED': {
            const errorType = connectErrorType(key.int('error'));
            return { key: `${stat}/${errorType}`, tag: stat, attributes: { [ATTR_ERROR_TYPE]: errorType } };
          }
          case 'TCP_STAT_BYTES_SENT':
          case 'TCP_STAT_BYTES_RECEIVED': {
            const direction = stat === 'TCP_STAT_BYTES_SENT' ? 'transmit' : 'receive';
            return { key: `${stat}/${role}`, tag: 'BYTES', attributes: { [ATTR_NETWORK_IO_DIRECTION]: direction, [ATTR_FLOWTEL_TCP_ROLE]: role } };
          }
          case 'TCP_STAT_STATE_DELTA': {
            const state = states.semconv(key.uint('state'));
            return state ? { key: `state/${state}`, tag: stat, attributes: { [ATTR_NETWORK_CONNECTION_STATE]: state } } : undefined;
          }
          default:
            return undefined;
        }
      },
      attribution,
      possibleCpus: runtime.possibleCpus,
      gracePeriodMs: context.cgroupGracePeriodMs,
    });

    const histogramOptions = {
      object,
      keyStruct: 'tcp_connections_hist_key',
      keyFields: ['role'],
      describe: (key: { uint(field: string): number }) => {
        const role = roleName(key.uint('role'));
        return { key: role, attributes: { [ATTR_FLOWTEL_TCP_ROLE]: role } };
      },
      attribution,
      scale: 1e-6,
      gracePeriodMs: context.cgroupGracePeriodMs,
    };
    const handshake = new KernelHistogramTable({ ...histogramOptions, mapName: 'tcp_connections_handshake', boundaries: HANDSHAKE_BOUNDARIES_S });
    const duration = new KernelHistogramTable({ ...histogramOptions, mapName: 'tcp_connections_duration', boundaries: DURATION_BOUNDARIES_S });

    this.stopCallbacks.push(
      context.series.register(() => {
        const rowsByTag = new Map<string, Array<SeriesTotals<'value'>>>();
        // Live sockets: the kernel's state deltas plus the baseline from /proc of endpoints still alive.
        const live = new Map<string, NumberSeries>();
        for (const [key, b] of baseline) {
          if (!attribution.isLiveRef(b.ref)) continue; // its pod is gone: so are its sockets
          // Named now, not at start: Kubernetes metadata may have arrived since.
          const attributes = { ...attribution.resolveRef(b.ref).attributes, ...b.groupAttributes };
          live.set(key, { key, attributes, value: b.value });
        }
        for (const row of table.collect()) {
          if (row.tag === 'TCP_STAT_STATE_DELTA') {
            const entry = live.get(row.seriesKey);
            if (entry) {
              entry.attributes = row.attributes;
              entry.value += row.totals.value;
            } else live.set(row.seriesKey, { key: row.seriesKey, attributes: row.attributes, value: row.totals.value });
          } else if (row.tag) {
            const rows = rowsByTag.get(row.tag) ?? [];
            rows.push(row);
            rowsByTag.set(row.tag, rows);
          }
        }
        const sumOf = (tag: string) => seriesOf(rowsByTag.get(tag) ?? [], 'value');
        return {
          sums: [
            { metric: METRIC_TCP_CONNECTION_OPENS, monotonic: true, series: sumOf('TCP_STAT_OPENED') },
            { metric: METRIC_TCP_CONNECTION_FAILURES, monotonic: true, series: sumOf('TCP_STAT_FAILED') },
            { metric: METRIC_TCP_CONNECTION_CLOSES, monotonic: true, series: sumOf('TCP_STAT_CLOSED') },
            { metric: METRIC_TCP_CONNECTION_BYTES, monotonic: true, series: sumOf('BYTES') },
            // Orphaned sockets (not in the baseline) may close below zero: clamp.
            { metric: METRIC_TCP_CONNECTIONS, monotonic: false, series: [...live.values()].map((s) => ({ ...s, value: Math.max(0, s.value) })) },
          ],
          histograms: [
            { metric: METRIC_TCP_HANDSHAKE_DURATION, boundaries: HANDSHAKE_BOUNDARIES_S, series: handshake.collect() },
            { metric: METRIC_TCP_CONNECTION_DURATION, boundaries: DURATION_BOUNDARIES_S, series: duration.collect() },
          ],
        };
      }),
    );

    const reader = new EventReader(object, 'tcp_connect_failed_event', ['error', 'duration_ns'] as const);
    const kind = object.objectEnum('flowtel_event_kind').FLOWTEL_EVENT_TCP_CONNECT_FAILED;
    const ports = ephemeralPorts();
    const build = (buf: Buffer, offset: number): RepeatableEvent => {
      const tuple = reader.tuple.decode(buf, offset);
      const errorType = connectErrorType(reader.fields.uint(buf, offset, 'error') | 0);
      const durationMs = reader.fields.uint(buf, offset, 'duration_ns') / 1e6;
      const summary = socketTupleSummary(tuple, ports);
      return {
        eventName: EVENT_TCP_CONNECTION_FAILURE,
        kernelTimeNs: reader.timestamp(buf, offset),
        body: `TCP connection ${tuple.localAddress}:${tuple.localPort} -> ${tuple.peerAddress}:${tuple.peerPort} failed: ${errorType} after ${durationMs.toFixed(1)} ms`,
        pattern: `TCP connection ${summary.local} -> ${summary.peer} failed: ${errorType}`,
        varying: [ATTR_FLOWTEL_TCP_CONNECT_DURATION_MS, ...summary.varying],
        attributes: {
          ...reader.endpointAttributes(buf, offset, attribution),
          [ATTR_NETWORK_TRANSPORT]: 'tcp',
          ...socketTupleAttributes(tuple, attribution),
          [ATTR_ERROR_TYPE]: errorType,
          [ATTR_FLOWTEL_TCP_CONNECT_DURATION_MS]: Math.round(durationMs * 1000) / 1000,
        },
      };
    };
    runtime.onEvent(kind, (buf, offset) => {
      // Repeats: same endpoint, error and tuple (the client's port aside).
      const key = `${reader.endpointKey(buf, offset)}|${reader.fields.uint(buf, offset, 'error')}|${reader.tuple.repeatKey(buf, offset, ports)}`;
      context.events.offer(key, reader.timestamp(buf, offset), build, buf, offset);
    });
  }

  stop(): void {
    for (const stop of this.stopCallbacks) stop();
    this.stopCallbacks = [];
  }

  /** Live sockets by state at start, in the same series identity the kernel rows get. */
  private baseline(context: ProbeContext, states: TcpStateNames): Map<string, BaselineEntry> {
    const out = new Map<string, BaselineEntry>();
    const ports = ephemeralPorts();
    for (const socket of existingTcpSockets((p) => context.attribution.cgroupIdOfProcPath(p))) {
      const state = states.semconv(socket.state);
      if (!state || state === 'closed') continue;
      const ref = { cgroupId: socket.cgroupId, netnsIno: socket.netnsIno };
      const endpoint = context.attribution.resolveRef(ref);
      let peer;
      if (this.config.granularity === 'flow') {
        peer = peerInfo(socket.remoteAddress, ports.serverPort(socket.localPort, socket.remotePort), IPPROTO_TCP, socket.family === 'ipv6' ? 10 : 2);
      }
      const key = seriesKeyOf(endpoint.keyId, peer?.key, `state/${state}`);
      const entry = out.get(key) ?? { ref, groupAttributes: { ...peer?.attributes, [ATTR_NETWORK_CONNECTION_STATE]: state }, value: 0 };
      entry.value += 1;
      out.set(key, entry);
    }
    return out;
  }
}

/** Sockets of one series found at start. */
interface BaselineEntry {
  ref: EndpointRef;
  /** Peer and state attributes; the endpoint's are resolved at each collection. */
  groupAttributes: Attributes;
  value: number;
}
