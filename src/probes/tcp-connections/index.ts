/**
 * tcp-connections: the connection life cycle from inet_sock_set_state.
 * Counters (opens, failures by error.type, closes, bytes at close), live
 * sockets by network.connection.state (kernel deltas on top of the sockets
 * that existed at start), handshake and connection-duration histograms, and
 * a log record per failed connection.
 */
import type { Attributes } from '@opentelemetry/api';
import type { HookSpec } from '../../bpf/hooks';
import type { TcpConnectionsNames } from '../../bpf/objects.generated';
import type { LoadedProbeObject, ProbeObjectSpec } from '../../bpf/runtime';
import { tcpFieldsHook } from '../shared/kernel-requirements';
import { StructReader } from '../../bpf/struct-reader';
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
import { integer, object } from '../../config/schema';
import { DEFAULT_IDLE_FLOW_TIMEOUT_MS, EVENT_PROBE_FIELDS, type EventProbeConfig } from '../config';
import { defineProbeGroup } from '../declaration';
import { EndpointCounterTable } from '../../tables/endpoint-counters';
import { FieldSeries, seriesOf } from '../../tables/instruments';
import { seriesKeyOf } from '../../tables/row-identity';
import { peerInfo } from '../../tables/endpoint-key';
import { EventReader, socketTupleAttributes, socketTupleSummary } from '../../events/event-endpoint';
import { KernelHistogramTable, kernelBoundaries } from '../../tables/kernel-histogram';
import type { NumberSeries } from '../../tables/series';
import { tcpStateNames, type TcpStateNames } from '../shared/tcp-states';
import type { RepeatableEvent } from '../../events/event-aggregator';
import type { ProbeContext, ProbeGroup } from '../types';
import { connectErrorType } from './error-type';
import { existingTcpSockets } from './existing-sockets';
import { ephemeralPorts, setCommonGlobals } from '../shared/globals';

const COUNTS = 'tcp_connections_counts';
const FAILURES = 'tcp_connections_failures';
/** Its own prefix: the kernel keeps 15 characters of a map name, and tools find maps by name. */
const TRACKED_SOCKETS = 'tracked_sockets';
/** 16 µs to ~16.8 s in quarter octaves. */
const HANDSHAKE_BOUNDARIES_S = kernelBoundaries(16, 2 ** 24, 1e-6);
/** 1 ms to ~38 h in octaves. */
const DURATION_BOUNDARIES_S = kernelBoundaries(1000, 2 ** 37, 1e-6, 4);
const IPPROTO_TCP = 6;

/** Every counter of a struct tcp_connections_counts row that the group reads. */
function countFields(liveStates: Array<[number, string]>, roles: number[]): string[] {
  const fields = liveStates.map(([value]) => `sockets[${value}]`);
  for (const role of roles) fields.push(`opened[${role}]`, `closed[${role}]`, `bytes_sent[${role}]`, `bytes_received[${role}]`);
  return fields;
}

export interface TcpConnectionsConfig extends EventProbeConfig {
  /**
   * Sockets whose connect or establishment time the kernel keeps until they close (handshake
   * and duration histograms, closes and bytes); a socket that finds no room is counted as lost (map_full).
   */
  maxTrackedSockets: number;
  /** How often the live-connection counts are checked against the sockets processes hold (/proc); 0: never. */
  reconcileIntervalMs: number;
}

/**
 * States whose sockets a process holds, so /proc sees every one of them: the live counts of these are set to
 * /proc's at each reconciliation. Sockets in the closing states are mostly orphans (closed by their process,
 * still in the kernel), which /proc cannot attribute: those counts stay the kernel's.
 */
const RECONCILED_STATES: ReadonlySet<string> = new Set(['established', 'syn_sent', 'close_wait', 'listen']);

export const TCP_CONNECTIONS_HOOKS: readonly HookSpec<TcpConnectionsNames['programs']>[] = [tcpFieldsHook('inet_sock_set_state', 3, '4.16')];

export class TcpConnectionsGroup implements ProbeGroup<TcpConnectionsNames> {
  readonly name = 'tcp-connections';
  readonly hooks = TCP_CONNECTIONS_HOOKS;
  readonly objectSpec: ProbeObjectSpec<TcpConnectionsNames>;

  constructor(private readonly config: TcpConnectionsConfig) {
    this.objectSpec = {
      group: this.name,
      objectFile: 'tcp_connections.bpf.o',
      hooks: TCP_CONNECTIONS_HOOKS,
      configure: (object) => {
        setCommonGlobals(object, config);
        object.setMapMaxEntries(COUNTS, config.maxRows);
        object.setMapMaxEntries(TRACKED_SOCKETS, config.maxTrackedSockets);
      },
    };
  }

  start(loaded: LoadedProbeObject<TcpConnectionsNames>, context: ProbeContext): void {
    const { runtime, attribution } = context;
    const object = loaded.object;
    const roles = object.objectEnum('tcp_connection_role');
    const roleName = (v: number): string => (v === roles.TCP_ROLE_CLIENT ? 'client' : v === roles.TCP_ROLE_SERVER ? 'server' : 'unknown');
    const states = tcpStateNames(runtime.native);
    // Count slots are the kernel's state values: as many as struct tcp_connections_counts.sockets has u64s.
    const sockets = new StructReader('tcp_connections_counts', object.structLayout('tcp_connections_counts'), ['sockets']).member('sockets');
    const liveStates = states.liveStates().filter(([value]) => value < sockets.size / 8);
    // Live sockets are counted as kernel deltas from a start count: /proc's at start, and again at each
    // reconciliation, when each series' start count is set so that start + delta = /proc's count. A delta the
    // kernel missed (a skipped program run) is thereby corrected within a reconciliation interval.
    let baseline = this.socketsByState(context, states);
    /** Per series key of a reconciled state: what to add to the kernel's delta (minus its delta at reconciliation). */
    const offsets = new Map<string, number>();
    let reconciledAt = Date.now();

    /** Index of the per-role arrays of struct tcp_connections_counts: 0 (not known), then enum tcp_connection_role. */
    const roleValues = [0, roles.TCP_ROLE_CLIENT, roles.TCP_ROLE_SERVER];
    const counts = new EndpointCounterTable({
      object,
      mapName: COUNTS,
      keyStruct: 'tcp_connections_key',
      valueStruct: 'tcp_connections_counts',
      fields: countFields(liveStates, roleValues),
      signed: true,
      liveFields: liveStates.map(([value]) => `sockets[${value}]`),
      attribution,
      possibleCpus: runtime.possibleCpus,
      ...context.rowLifetime,
    });
    const failures = new EndpointCounterTable({
      object,
      mapName: FAILURES,
      keyStruct: 'tcp_connections_failure_key',
      fields: ['value'] as const,
      keyFields: ['error'],
      describe: (key) => {
        const errorType = connectErrorType(key.int('error'));
        return { key: errorType, attributes: { [ATTR_ERROR_TYPE]: errorType } };
      },
      attribution,
      possibleCpus: runtime.possibleCpus,
      ...context.rowLifetime,
    });
    // What each counter of a row becomes: its field, the suffix of its series key and its own attributes
    // (frozen and shared by every row, so the exporter encodes them once).
    const stateCounters = liveStates.map(([value, name]) => ({
      field: `sockets[${value}]`,
      suffix: `state/${name}`,
      attributes: Object.freeze({ [ATTR_NETWORK_CONNECTION_STATE]: name }),
      reconciled: RECONCILED_STATES.has(name),
    }));
    const roleCounters = (kind: 'opened' | 'closed' | 'bytes_sent' | 'bytes_received') =>
      roleValues.map((value) => {
        const role = roleName(value);
        const direction =
          kind === 'bytes_sent' ? { [ATTR_NETWORK_IO_DIRECTION]: 'transmit' } : kind === 'bytes_received' ? { [ATTR_NETWORK_IO_DIRECTION]: 'receive' } : {};
        return { field: `${kind}[${value}]`, suffix: `${kind}/${role}`, attributes: Object.freeze({ ...direction, [ATTR_FLOWTEL_TCP_ROLE]: role }) };
      });
    const openCounters = roleCounters('opened');
    const closeCounters = roleCounters('closed');
    const byteCounters = [...roleCounters('bytes_sent'), ...roleCounters('bytes_received')];
    /** State series shown in the last collection: a state that empties is shown at 0 while its row lives, not dropped. */
    let shownStates = new Set<string>();

    const histogramOptions = {
      object,
      keyStruct: 'tcp_connections_hist_key' as const,
      keyFields: ['role'],
      describe: (key: { uint(field: string): number }) => {
        const role = roleName(key.uint('role'));
        return { key: role, attributes: { [ATTR_FLOWTEL_TCP_ROLE]: role } };
      },
      attribution,
      possibleCpus: runtime.possibleCpus,
      scale: 1e-6,
      ...context.rowLifetime,
    };
    const handshake = new KernelHistogramTable({ ...histogramOptions, mapName: 'tcp_connections_handshake', boundaries: HANDSHAKE_BOUNDARIES_S });
    const duration = new KernelHistogramTable({ ...histogramOptions, mapName: 'tcp_connections_duration', boundaries: DURATION_BOUNDARIES_S });

    context.series.register(() => {
      const opens: NumberSeries[] = [];
      const closes: NumberSeries[] = [];
      const bytes: NumberSeries[] = [];
      const interval = this.config.reconcileIntervalMs;
      const reconcile = interval > 0 && Date.now() - reconciledAt >= interval;
      if (reconcile) {
        reconciledAt = Date.now();
        const held = this.socketsByState(context, states);
        baseline = new Map([...baseline].filter(([, entry]) => !RECONCILED_STATES.has(entry.state)));
        for (const [key, entry] of held) if (RECONCILED_STATES.has(entry.state)) baseline.set(key, entry);
        offsets.clear();
      }
      // Live sockets: the kernel's state deltas plus the baseline from /proc of endpoints still alive.
      const live = new Map<string, NumberSeries>();
      const shown = new Set<string>();
      for (const [key, b] of baseline) {
        if (!attribution.isLiveRef(b.ref)) continue; // its pod is gone: so are its sockets
        // Named now, not at start: Kubernetes metadata may have arrived since.
        const attributes = { ...attribution.resolveRef(b.ref).attributes, ...b.groupAttributes };
        live.set(key, { key, attributes, value: b.value });
      }
      for (const row of counts.collect()) {
        const { totals } = row;
        for (const { field, suffix, attributes, reconciled } of stateCounters) {
          const key = row.seriesKey + suffix;
          const delta = totals[field];
          if (reconcile && reconciled) offsets.set(key, -delta);
          const atStart = (live.get(key)?.value ?? 0) + (offsets.get(key) ?? 0);
          if (atStart === 0 && delta === 0 && !shownStates.has(key)) continue;
          // Sockets that predate the agent but not its baseline (opened while it started) may close below zero: clamp.
          live.set(key, new FieldSeries(row, key, Math.max(0, atStart + delta), row.startTime, attributes));
          shown.add(key);
        }
        // Counters of a role that never happened (a server's client opens) are not series.
        for (const [out, counters] of [
          [opens, openCounters],
          [closes, closeCounters],
          [bytes, byteCounters],
        ] as const) {
          for (const { field, suffix, attributes } of counters) {
            if (totals[field] !== 0) out.push(new FieldSeries(row, row.seriesKey + suffix, totals[field], row.startTime, attributes));
          }
        }
      }
      shownStates = shown;
      return {
        sums: [
          { metric: METRIC_TCP_CONNECTION_OPENS, monotonic: true, series: opens },
          { metric: METRIC_TCP_CONNECTION_FAILURES, monotonic: true, series: seriesOf(failures.collect(), 'value') },
          { metric: METRIC_TCP_CONNECTION_CLOSES, monotonic: true, series: closes },
          { metric: METRIC_TCP_CONNECTION_BYTES, monotonic: true, series: bytes },
          { metric: METRIC_TCP_CONNECTIONS, monotonic: false, series: [...live.values()] },
        ],
        histograms: [
          { metric: METRIC_TCP_HANDSHAKE_DURATION, boundaries: HANDSHAKE_BOUNDARIES_S, series: handshake.collect() },
          { metric: METRIC_TCP_CONNECTION_DURATION, boundaries: DURATION_BOUNDARIES_S, series: duration.collect() },
        ],
      };
    });

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
    context.onEvent(kind, (buf, offset) => {
      // Repeats: same endpoint, error and tuple (the client's port aside).
      const key = `${reader.endpointKey(buf, offset)}|${reader.fields.uint(buf, offset, 'error')}|${reader.tuple.repeatKey(buf, offset, ports)}`;
      context.events.offer(key, reader.timestamp(buf, offset), build, buf, offset);
    });
  }

  /** Live sockets by state that processes hold now (/proc), in the same series identity the kernel rows get. */
  private socketsByState(context: ProbeContext, states: TcpStateNames): Map<string, BaselineEntry> {
    const out = new Map<string, BaselineEntry>();
    const ports = ephemeralPorts();
    for (const socket of existingTcpSockets((p) => context.attribution.cgroupIdOfProcPath(p))) {
      const state = states.liveStateName(socket.state);
      if (!state) continue;
      const ref = { cgroupId: socket.cgroupId, netnsIno: socket.netnsIno };
      const endpoint = context.attribution.resolveRef(ref);
      let peer;
      if (this.config.granularity === 'flow') {
        peer = peerInfo(socket.remoteAddress, ports.serverPort(socket.localPort, socket.remotePort), IPPROTO_TCP, socket.family === 'ipv6' ? 10 : 2);
      }
      const key = seriesKeyOf(endpoint.keyId, peer?.key, `state/${state}`);
      const entry = out.get(key) ?? { ref, state, groupAttributes: { ...peer?.attributes, [ATTR_NETWORK_CONNECTION_STATE]: state }, value: 0 };
      entry.value += 1;
      out.set(key, entry);
    }
    return out;
  }
}

/** Sockets of one series found at start. */
interface BaselineEntry {
  ref: EndpointRef;
  /** The TCP state's name (network.connection.state). */
  state: string;
  /** Peer and state attributes; the endpoint's are resolved at each collection. */
  groupAttributes: Attributes;
  value: number;
}

export const tcpConnections = defineProbeGroup<'tcpConnections', TcpConnectionsConfig>({
  name: 'tcp-connections',
  configKey: 'tcpConnections',
  config: {
    schema: object({
      ...EVENT_PROBE_FIELDS,
      maxTrackedSockets: integer(16, 1 << 24, 'TCP sockets tracked from connect or accept to close'),
      reconcileIntervalMs: integer(0, 86_400_000, 'milliseconds between checks of the live-connection counts against /proc; 0: never'),
    }),
    // 65,536 sockets: 5.5 MiB of kernel memory, allocated when the group loads (docs/telemetry.md).
    defaults: {
      enabled: true,
      granularity: 'pod',
      maxEventsPerSecondPerCpu: 100,
      maxRows: 16384,
      idleFlowTimeoutMs: DEFAULT_IDLE_FLOW_TIMEOUT_MS,
      maxTrackedSockets: 65536,
      reconcileIntervalMs: 60_000,
    },
  },
  hooks: TCP_CONNECTIONS_HOOKS,
  withoutIt: 'no connection opens, failures, closes, live connections or handshake and lifetime histograms',
  telemetry: {
    metrics: [
      METRIC_TCP_CONNECTION_OPENS,
      METRIC_TCP_CONNECTION_FAILURES,
      METRIC_TCP_CONNECTION_CLOSES,
      METRIC_TCP_CONNECTION_BYTES,
      METRIC_TCP_CONNECTIONS,
      METRIC_TCP_HANDSHAKE_DURATION,
      METRIC_TCP_CONNECTION_DURATION,
    ],
    events: [EVENT_TCP_CONNECTION_FAILURE],
  },
  trialConfig: (config, rows) => ({ ...config, maxTrackedSockets: Math.min(config.maxTrackedSockets, rows) }),
  build: (config) => new TcpConnectionsGroup(config),
});
