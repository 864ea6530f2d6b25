/**
 * Every attribute key Flowtel emits, in one place (DESIGN §6). Semantic-
 * convention keys are copied here (incubating ones included) rather than
 * imported from the incubating entry point, which may change shape.
 */

// --- OpenTelemetry semantic conventions (resource and Kubernetes) ---
export const ATTR_SERVICE_NAME = 'service.name';
export const ATTR_SERVICE_VERSION = 'service.version';
export const ATTR_HOST_NAME = 'host.name';
export const ATTR_K8S_NODE_NAME = 'k8s.node.name';
export const ATTR_K8S_POD_UID = 'k8s.pod.uid';
export const ATTR_CONTAINER_ID = 'container.id';

// --- OpenTelemetry semantic conventions (network) ---
export const ATTR_NETWORK_TRANSPORT = 'network.transport';
export const ATTR_NETWORK_TYPE = 'network.type';
export const ATTR_NETWORK_LOCAL_ADDRESS = 'network.local.address';
export const ATTR_NETWORK_LOCAL_PORT = 'network.local.port';
export const ATTR_NETWORK_PEER_ADDRESS = 'network.peer.address';
export const ATTR_NETWORK_PEER_PORT = 'network.peer.port';
export const ATTR_SERVER_PORT = 'server.port';
export const ATTR_SOURCE_ADDRESS = 'source.address';
export const ATTR_SOURCE_PORT = 'source.port';
export const ATTR_DESTINATION_ADDRESS = 'destination.address';
export const ATTR_DESTINATION_PORT = 'destination.port';
export const ATTR_NETWORK_IO_DIRECTION = 'network.io.direction';
export const ATTR_NETWORK_CONNECTION_STATE = 'network.connection.state';
export const ATTR_ERROR_TYPE = 'error.type';

// --- Flowtel's own (no semantic convention defines these) ---
/** Who owns the socket: `pod`, `node` (a cgroup outside kubepods) or `unknown` (cgroup gone). */
export const ATTR_FLOWTEL_ATTRIBUTION = 'flowtel.attribution';
/** Pod QoS class as read from the kubelet cgroup path. */
export const ATTR_FLOWTEL_POD_QOS_CLASS = 'flowtel.k8s.pod.qos_class';
/** TCP state name of the socket when the event happened (ESTABLISHED, ...). */
export const ATTR_FLOWTEL_TCP_STATE = 'flowtel.tcp.state';
/** Segments carried by one retransmission (TSO/GSO). */
export const ATTR_FLOWTEL_TCP_SEGMENTS = 'flowtel.tcp.segments';
/** The cgroup v2 id of the socket (log records only: unbounded). */
export const ATTR_FLOWTEL_CGROUP_ID = 'flowtel.cgroup.id';
/** Why events were lost: ring_buffer_full, map_full, queue_full, log_queue_full, log_export_failed, unhandled, program_skipped. */
export const ATTR_FLOWTEL_LOSS_REASON = 'flowtel.loss.reason';
/** Which OTLP signal an export carried: metrics or logs. */
export const ATTR_FLOWTEL_SIGNAL = 'flowtel.signal';
/** How an export ended: success or failure. */
export const ATTR_FLOWTEL_EXPORT_OUTCOME = 'flowtel.export.outcome';

export const ATTRIBUTION_POD = 'pod';
export const ATTRIBUTION_NODE = 'node';
export const ATTRIBUTION_UNKNOWN = 'unknown';

export const LOSS_RING_BUFFER_FULL = 'ring_buffer_full';
export const LOSS_MAP_FULL = 'map_full';
export const LOSS_QUEUE_FULL = 'queue_full';
/** A log record dropped because the log queue was full (the exporter slower than the events, or failing). */
export const LOSS_LOG_QUEUE_FULL = 'log_queue_full';
/** Log records in an export the destination did not take: refused, unreachable or timed out. */
export const LOSS_LOG_EXPORT_FAILED = 'log_export_failed';
/** A record the agent could not handle: an event kind no group registered, or a handler that failed. */
export const LOSS_UNHANDLED = 'unhandled';
/** A run of one of our tracing programs that the kernel skipped: the program was already running on that CPU. */
export const LOSS_PROGRAM_SKIPPED = 'program_skipped';
/** Which of the agent's BPF programs a loss belongs to (program_skipped only). */
export const ATTR_FLOWTEL_BPF_PROGRAM = 'flowtel.bpf.program';
export const ATTR_FLOWTEL_BPF_MAP = 'flowtel.bpf.map';

/** Reset reason name from the kernel's enum sk_rst_reason, without SK_RST_REASON_ (sent resets only). */
export const ATTR_FLOWTEL_TCP_RESET_REASON = 'flowtel.tcp.reset.reason';
/** Drop reason name from the kernel's enum skb_drop_reason, without SKB_DROP_REASON_. */
export const ATTR_FLOWTEL_DROP_REASON = 'flowtel.drop.reason';
/** Kernel function (symbol+offset) that freed a dropped packet (log records only). */
export const ATTR_FLOWTEL_DROP_LOCATION = 'flowtel.drop.location';
/** Bytes of a dropped packet (log records only). */
export const ATTR_FLOWTEL_PACKET_LENGTH = 'flowtel.packet.length';
/** Which side opened a TCP connection: client or server. */
export const ATTR_FLOWTEL_TCP_ROLE = 'flowtel.tcp.role';
/** Milliseconds from connect() to the failure (log records only). */
export const ATTR_FLOWTEL_TCP_CONNECT_DURATION_MS = 'flowtel.tcp.connect.duration_ms';
/** On a summary log record: how many repeats of the event it stands for (absent: the record is one event). */
export const ATTR_FLOWTEL_EVENT_COUNT = 'flowtel.event.count';

export const ATTRIBUTION_OVERFLOW = 'overflow';

/** The SDK's marker for series beyond a cardinality limit; flows uses it for a pod's flows that did not fit. */
export const ATTR_OTEL_METRIC_OVERFLOW = 'otel.metric.overflow';

// --- Kubernetes identity (semantic conventions, incubating, copied here) ---
export const ATTR_K8S_NAMESPACE_NAME = 'k8s.namespace.name';
export const ATTR_K8S_POD_NAME = 'k8s.pod.name';
export const ATTR_K8S_CONTAINER_NAME = 'k8s.container.name';
export const ATTR_K8S_SERVICE_NAME = 'k8s.service.name';
export const ATTR_K8S_DEPLOYMENT_NAME = 'k8s.deployment.name';
export const ATTR_K8S_REPLICASET_NAME = 'k8s.replicaset.name';
export const ATTR_K8S_STATEFULSET_NAME = 'k8s.statefulset.name';
export const ATTR_K8S_DAEMONSET_NAME = 'k8s.daemonset.name';
export const ATTR_K8S_JOB_NAME = 'k8s.job.name';
export const ATTR_K8S_CRONJOB_NAME = 'k8s.cronjob.name';

/** k8s.pod.label.<key> */
export function k8sPodLabelKey(label: string): string {
  return `k8s.pod.label.${label}`;
}

/** The k8s.<kind>.name key of each workload kind. */
export const WORKLOAD_NAME_KEYS = {
  deployment: ATTR_K8S_DEPLOYMENT_NAME,
  replicaset: ATTR_K8S_REPLICASET_NAME,
  statefulset: ATTR_K8S_STATEFULSET_NAME,
  daemonset: ATTR_K8S_DAEMONSET_NAME,
  job: ATTR_K8S_JOB_NAME,
  cronjob: ATTR_K8S_CRONJOB_NAME,
} as const;

/**
 * The remote endpoint's Kubernetes identity uses the same keys under this
 * prefix: peer.k8s.pod.name, peer.k8s.namespace.name, peer.k8s.service.name, ...
 */
export const PEER_PREFIX = 'peer.';
/** What the remote address is: pod, service (a ClusterIP), node, or external. */
export const ATTR_FLOWTEL_PEER_KIND = 'flowtel.peer.kind';
/** Which watched resource a Kubernetes self-metric is about (pods, pods (cluster), services, nodes). */
export const ATTR_FLOWTEL_K8S_RESOURCE = 'flowtel.k8s.resource';

/** V8 JS runtime metrics (the agent's own memory). */
export const ATTR_V8JS_HEAP_SPACE_NAME = 'v8js.heap.space.name';

/** A probe group's name (tcp-retransmits, drops, ...), on the agent's own metrics. */
export const ATTR_FLOWTEL_PROBE_GROUP = 'flowtel.probe_group';
/** What became of a probe group at start: ok, degraded, unsupported, failed or disabled. */
export const ATTR_FLOWTEL_PROBE_GROUP_STATE = 'flowtel.probe_group.state';
/** Why a probe group is not ok: its degradation or the cause it does not run (one line). */
export const ATTR_FLOWTEL_PROBE_GROUP_REASON = 'flowtel.probe_group.reason';
