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
/** Probe group a self-metric is about. */
export const ATTR_FLOWTEL_PROBE_GROUP = 'flowtel.probe.group';
/** Why events were lost: ring_buffer_full, map_full, queue_full. */
export const ATTR_FLOWTEL_LOSS_REASON = 'flowtel.loss.reason';

export const ATTRIBUTION_POD = 'pod';
export const ATTRIBUTION_NODE = 'node';
export const ATTRIBUTION_UNKNOWN = 'unknown';

export const LOSS_RING_BUFFER_FULL = 'ring_buffer_full';
export const LOSS_MAP_FULL = 'map_full';
export const LOSS_QUEUE_FULL = 'queue_full';
