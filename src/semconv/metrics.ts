/**
 * Metric names, units and descriptions. Names without a semantic convention
 * use the `flowtel.` prefix and follow the TCP-metrics proposal
 * (semantic-conventions #3682). Documented in docs/telemetry.md.
 */
export interface MetricName {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

export const METRIC_TCP_RETRANSMITS: MetricName = {
  name: 'flowtel.tcp.retransmits',
  unit: '{segment}',
  description:
    "TCP segments retransmitted by sockets of the endpoint and sent (the kernel's TcpRetransSegs less TcpExtTCPRetransFail, the retransmissions it failed to send).",
};

export const METRIC_TCP_RETRANSMIT_EVENTS: MetricName = {
  name: 'flowtel.tcp.retransmit.events',
  unit: '{event}',
  description: 'Successful tcp_retransmit_skb calls; one call may resend several segments (TSO/GSO).',
};

export const METRIC_AGENT_EVENTS_RECEIVED: MetricName = {
  name: 'flowtel.agent.events.received',
  unit: '{event}',
  description: 'Kernel events that reached the agent through the ring buffer.',
};

export const METRIC_AGENT_EVENTS_LOST: MetricName = {
  name: 'flowtel.agent.events.lost',
  unit: '{event}',
  description: 'Kernel events or counts lost, by reason (ring_buffer_full, map_full, queue_full, unhandled, program_skipped).',
};

export const METRIC_AGENT_PROBE_GROUPS: MetricName = {
  name: 'flowtel.agent.probe_groups',
  unit: '{group}',
  description: 'Each probe group, 1 with its state (ok, degraded, unsupported, failed, disabled) and, when not ok, the reason.',
};

export const METRIC_AGENT_BPF_MAP_MEMORY: MetricName = {
  name: 'flowtel.agent.bpf.map.memory',
  unit: 'By',
  description: "Kernel memory of each of the agent's BPF maps, as the kernel states it (fdinfo memlock); it counts against the pod's memory limit.",
};

export const METRIC_AGENT_COLLECTION_DURATION: MetricName = {
  name: 'flowtel.agent.collection.duration',
  unit: 's',
  description: 'How long the last collection of the kernel-map series took (every map read and aggregated).',
};

export const METRIC_AGENT_METRIC_EXPORTS_SKIPPED: MetricName = {
  name: 'flowtel.agent.metric_exports.skipped',
  unit: '{export}',
  description: 'OTLP metric exports skipped because the previous one was still being sent (the next export carries the cumulative totals).',
};

export const METRIC_AGENT_EXPORTS: MetricName = {
  name: 'flowtel.agent.exports',
  unit: '{export}',
  description: 'OTLP exports by signal and outcome (a metrics export is one collection, however many requests it takes; a logs export is one batch).',
};

export const METRIC_AGENT_EXPORT_REJECTED: MetricName = {
  name: 'flowtel.agent.export.rejected',
  unit: '{item}',
  description: 'Data points or log records the destination refused in exports it otherwise accepted (OTLP partial success); they are lost.',
};

export const METRIC_AGENT_EVENTS_AGGREGATED: MetricName = {
  name: 'flowtel.agent.events.aggregated',
  unit: '{event}',
  description: 'Events folded into a summary log record (flowtel.event.count) instead of one record each.',
};

/** Semantic convention (process metrics): the agent's resident set. */
export const METRIC_PROCESS_MEMORY_USAGE: MetricName = {
  name: 'process.memory.usage',
  unit: 'By',
  description: "The amount of physical memory in use (the agent's resident set).",
};

/** Semantic convention (V8 JS runtime metrics), by v8js.heap.space.name. */
export const METRIC_V8JS_HEAP_USED: MetricName = {
  name: 'v8js.memory.heap.used',
  unit: 'By',
  description: 'Heap Memory size allocated (live and not yet collected objects), by V8 heap space.',
};

export const METRIC_AGENT_MEMORY_EXTERNAL: MetricName = {
  name: 'flowtel.agent.memory.external',
  unit: 'By',
  description: "Memory outside V8's heap that JavaScript objects hold (Buffers, typed arrays: process.memoryUsage().external).",
};

export const METRIC_AGENT_EVENTS_SUPPRESSED: MetricName = {
  name: 'flowtel.agent.events.suppressed',
  unit: '{event}',
  description: 'Events not emitted because of the configured per-CPU rate limit (their counts are still in the metrics).',
};

export const METRIC_AGENT_NETNS_UNREADABLE: MetricName = {
  name: 'flowtel.agent.netns.unreadable',
  unit: '{process}',
  description:
    "Processes whose network namespace the agent could not read in its last /proc scan (without CAP_SYS_PTRACE, every other user's): events without a socket in their pods' namespaces are attributed to unknown.",
};

/*
 * Failed metric exports are counted by the SDK's own self-observability
 * metrics (otel.sdk.exporter.*), which the exporters pipeline wires to the
 * same MeterProvider; undelivered log records are in flowtel.agent.events.lost.
 */

export const METRIC_TCP_RESETS: MetricName = {
  name: 'flowtel.tcp.resets',
  unit: '{reset}',
  description: 'TCP resets sent (with the kernel reason) and received, by network.io.direction.',
};

export const METRIC_NETWORK_DROPS: MetricName = {
  name: 'flowtel.network.drops',
  unit: '{packet}',
  description: 'Packets the kernel dropped, by drop reason (enum skb_drop_reason).',
};

export const METRIC_NETWORK_DROPPED_BYTES: MetricName = {
  name: 'flowtel.network.dropped_bytes',
  unit: 'By',
  description: 'Bytes of the packets the kernel dropped, by drop reason.',
};

export const METRIC_TCP_CONNECTION_OPENS: MetricName = {
  name: 'flowtel.tcp.connection.opens',
  unit: '{connection}',
  description: 'TCP handshakes completed, by flowtel.tcp.role (client: SYN_SENT to ESTABLISHED; server: SYN_RECV to ESTABLISHED).',
};

export const METRIC_TCP_CONNECTION_FAILURES: MetricName = {
  name: 'flowtel.tcp.connection.failures',
  unit: '{connection}',
  description: 'Client connection attempts that ended before ESTABLISHED, by error.type.',
};

export const METRIC_TCP_CONNECTION_CLOSES: MetricName = {
  name: 'flowtel.tcp.connection.closes',
  unit: '{connection}',
  description: 'Established TCP connections that closed, by flowtel.tcp.role.',
};

export const METRIC_TCP_CONNECTION_BYTES: MetricName = {
  name: 'flowtel.tcp.connection.bytes',
  unit: 'By',
  description: 'Bytes of connections at close, by network.io.direction (transmit: acked by the peer; receive: received).',
};

export const METRIC_TCP_CONNECTIONS: MetricName = {
  name: 'flowtel.tcp.connections',
  unit: '{connection}',
  description: 'Live TCP sockets by network.connection.state.',
};

export const METRIC_TCP_HANDSHAKE_DURATION: MetricName = {
  name: 'flowtel.tcp.handshake.duration',
  unit: 's',
  description: 'TCP handshake time: client connect() to ESTABLISHED; server SYN-ACK to the final ACK.',
};

export const METRIC_TCP_CONNECTION_DURATION: MetricName = {
  name: 'flowtel.tcp.connection.duration',
  unit: 's',
  description: 'Lifetime of TCP connections from ESTABLISHED to CLOSE.',
};

export const METRIC_TCP_RTT: MetricName = {
  name: 'flowtel.tcp.rtt',
  unit: 's',
  description: 'Smoothed TCP round-trip time (srtt) of sampled incoming segments.',
};

export const METRIC_POD_NETWORK_IO: MetricName = {
  name: 'k8s.pod.network.io',
  unit: 'By',
  description: 'Bytes sent and received by the sockets of the endpoint (IP packet length), by network.io.direction.',
};

export const METRIC_POD_NETWORK_PACKETS: MetricName = {
  name: 'flowtel.pod.network.packets',
  unit: '{packet}',
  description: 'Packets sent and received by the sockets of the endpoint (GSO packets count their segments).',
};

export const METRIC_AGENT_K8S_OBJECTS: MetricName = {
  name: 'flowtel.agent.k8s.objects',
  unit: '{object}',
  description: 'Objects in the metadata cache, by resource.',
};
export const METRIC_AGENT_K8S_SYNCED: MetricName = {
  name: 'flowtel.agent.k8s.synced',
  unit: '1',
  description: '1 while the resource is listed and its watch healthy, 0 while retrying.',
};
export const METRIC_AGENT_K8S_LISTS: MetricName = {
  name: 'flowtel.agent.k8s.lists',
  unit: '{request}',
  description: 'LIST requests made (initial sync and relists).',
};
export const METRIC_AGENT_K8S_WATCHES: MetricName = {
  name: 'flowtel.agent.k8s.watches',
  unit: '{request}',
  description: 'WATCH requests made (each resume counts).',
};
export const METRIC_AGENT_K8S_RELISTS: MetricName = {
  name: 'flowtel.agent.k8s.relists',
  unit: '{relist}',
  description: 'Relists forced by 410 Gone (watch history compacted).',
};
export const METRIC_AGENT_K8S_ERRORS: MetricName = {
  name: 'flowtel.agent.k8s.errors',
  unit: '{error}',
  description: 'Failed LIST/WATCH attempts (API unreachable, RBAC, ...), each retried with backoff.',
};
