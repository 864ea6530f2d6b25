/**
 * Turns a socket's cgroup id into the attributes of its local endpoint.
 * Without the Kubernetes API (a later layer adds names and workloads), a pod
 * is known by its uid and container id from the kubelet cgroup path; any
 * other cgroup belongs to the node itself.
 */
import type { Attributes } from '@opentelemetry/api';
import {
  ATTR_CONTAINER_ID,
  ATTR_FLOWTEL_ATTRIBUTION,
  ATTR_FLOWTEL_POD_QOS_CLASS,
  ATTR_K8S_NODE_NAME,
  ATTR_K8S_POD_UID,
  ATTRIBUTION_NODE,
  ATTRIBUTION_POD,
  ATTRIBUTION_UNKNOWN,
} from '../semconv';
import { parseKubeletCgroupPath } from './cgroup-path';
import type { CgroupIndex } from './cgroup-index';
import type { NetnsIndex } from './netns-index';

/** What the kernel knows of a local endpoint: the socket's cgroup, else (0) the netns. */
export interface EndpointRef {
  cgroupId: bigint;
  netnsIno: number;
}

/** Where Kubernetes names come from (the metadata cache), when the API is available. */
export interface PodMetadataSource {
  podAttributesOf(podUid: string, containerId?: string): Attributes | undefined;
  peerOf(address: string): { attributes: Attributes };
  onPodChange(listener: (podUid: string) => void): void;
  /** Called with an address whenever the object that owns it (pod, service, node) changes. */
  onPeerChange(listener: (address: string) => void): void;
}

/**
 * The Kubernetes identity of a remote address, cached per address. `stale`
 * turns true when the owner of the address changes; holders of the entry
 * (cached map-row identities) then look it up again.
 */
export interface PeerIdentity {
  readonly attributes: Attributes;
  stale: boolean;
}

const NO_PEER_METADATA: PeerIdentity = Object.freeze({ attributes: Object.freeze({}), stale: false }) as PeerIdentity;
/** Peers cached at most; a scan of many external addresses must not grow the agent without bound. */
const MAX_CACHED_PEERS = 65_536;

export interface LocalEndpoint {
  /** Stable identity of the attribute set, for aggregating rows that share it. */
  readonly key: string;
  /**
   * A short stand-in for `key` (the same for the same key until the cgroup
   * or netns of a pod is forgotten; a later endpoint with that key gets a new
   * one and its series restart), for series keys kept per flow: a pod's key is about 105
   * characters, and a node with 100,000 flows keeps one series key each.
   */
  readonly keyId: string;
  readonly attributes: Attributes;
  readonly kind: 'pod' | 'node' | 'unknown';
  readonly podUid?: string;
}

export class CgroupAttribution {
  private readonly endpoints = new Map<bigint, LocalEndpoint>();
  private readonly netnsEndpoints = new Map<number, LocalEndpoint>();
  private metadata: PodMetadataSource | undefined;
  private readonly node: LocalEndpoint;
  private readonly unknown: LocalEndpoint;
  private readonly peers = new Map<string, PeerIdentity>();
  /** LocalEndpoint.keyId by key. */
  private readonly keyIds = new Map<string, string>();
  private nextKeyId = 0;
  private generation = 0;

  constructor(
    private readonly index: CgroupIndex,
    readonly nodeName: string,
    private readonly netns?: NetnsIndex,
  ) {
    this.node = this.freeze('node', { [ATTR_K8S_NODE_NAME]: nodeName, [ATTR_FLOWTEL_ATTRIBUTION]: ATTRIBUTION_NODE });
    this.unknown = this.freeze('unknown', { [ATTR_K8S_NODE_NAME]: nodeName, [ATTR_FLOWTEL_ATTRIBUTION]: ATTRIBUTION_UNKNOWN });
  }

  /**
   * Adds Kubernetes names to pod endpoints. Endpoints cached before a pod's
   * metadata arrived (or changed) are dropped so the next lookup has them.
   */
  useMetadata(metadata: PodMetadataSource): void {
    this.metadata = metadata;
    this.endpoints.clear();
    this.netnsEndpoints.clear();
    this.forgetPeers();
    this.generation++;
    metadata.onPodChange((podUid) => {
      let forgot = false;
      for (const [id, endpoint] of this.endpoints) if (endpoint.podUid === podUid) forgot = this.endpoints.delete(id);
      for (const [ino, endpoint] of this.netnsEndpoints) if (endpoint.podUid === podUid) forgot = this.netnsEndpoints.delete(ino);
      // Only endpoints resolved before can resolve differently now.
      if (forgot) this.generation++;
    });
    metadata.onPeerChange((address) => {
      const entry = this.peers.get(address);
      if (!entry) return;
      entry.stale = true;
      this.peers.delete(address);
    });
  }

  /**
   * Changes whenever an endpoint resolved earlier may now resolve differently
   * (its pod's metadata changed, or it was forgotten). Holders of resolved
   * endpoints compare it instead of resolving every row at every collection.
   */
  get endpointGeneration(): number {
    return this.generation;
  }

  /** Kubernetes identity of a remote address under the peer prefix ({} without the API). */
  peerIdentity(address: string): Attributes {
    return this.peer(address).attributes;
  }

  /** The cached identity of a remote address; it turns stale when the address's owner changes. */
  peer(address: string): PeerIdentity {
    if (!this.metadata) return NO_PEER_METADATA;
    const cached = this.peers.get(address);
    if (cached) return cached;
    if (this.peers.size >= MAX_CACHED_PEERS) this.forgetPeers();
    const entry: PeerIdentity = { attributes: Object.freeze(this.metadata.peerOf(address).attributes), stale: false };
    this.peers.set(address, entry);
    return entry;
  }

  /** Endpoint of a cgroup id. Ids of cgroups removed before we saw them resolve to `unknown` (not cached). */
  resolve(cgroupId: bigint): LocalEndpoint {
    const cached = this.endpoints.get(cgroupId);
    if (cached) return cached;
    const cgroupPath = this.index.pathOf(cgroupId);
    if (cgroupPath === undefined) return this.unknown;
    const pod = parseKubeletCgroupPath(cgroupPath);
    let endpoint = this.node;
    if (pod) {
      const attributes: Attributes = {
        [ATTR_K8S_NODE_NAME]: this.nodeName,
        [ATTR_K8S_POD_UID]: pod.podUid,
        [ATTR_FLOWTEL_POD_QOS_CLASS]: pod.qosClass,
        [ATTR_FLOWTEL_ATTRIBUTION]: ATTRIBUTION_POD,
        ...this.metadata?.podAttributesOf(pod.podUid, pod.containerId),
      };
      if (pod.containerId) attributes[ATTR_CONTAINER_ID] = pod.containerId;
      endpoint = this.freeze(`pod/${pod.podUid}/${pod.containerId ?? ''}`, attributes, pod.podUid);
    }
    this.endpoints.set(cgroupId, endpoint);
    return endpoint;
  }

  /** Endpoint of a kernel reference: by cgroup when the event had a full socket, else by netns. */
  resolveRef(ref: EndpointRef): LocalEndpoint {
    return ref.cgroupId !== 0n ? this.resolve(ref.cgroupId) : this.resolveNetns(ref.netnsIno);
  }

  /** A socket-less event belongs to the pod whose processes share its netns (pod-level: no container). */
  resolveNetns(netnsIno: number): LocalEndpoint {
    const cached = this.netnsEndpoints.get(netnsIno);
    if (cached) return cached;
    if (!this.netns || netnsIno === 0) return this.unknown;
    if (this.netns.isHost(netnsIno)) return this.node;
    const cgroups = this.netns.cgroupsOf(netnsIno);
    if (!cgroups) return this.unknown;
    let endpoint = this.node;
    for (const cgroupPath of cgroups) {
      const pod = parseKubeletCgroupPath(cgroupPath);
      if (!pod) continue;
      endpoint = this.freeze(
        `pod/${pod.podUid}/`,
        {
          [ATTR_K8S_NODE_NAME]: this.nodeName,
          [ATTR_K8S_POD_UID]: pod.podUid,
          [ATTR_FLOWTEL_POD_QOS_CLASS]: pod.qosClass,
          [ATTR_FLOWTEL_ATTRIBUTION]: ATTRIBUTION_POD,
          ...this.metadata?.podAttributesOf(pod.podUid),
        },
        pod.podUid,
      );
      break;
    }
    this.netnsEndpoints.set(netnsIno, endpoint);
    return endpoint;
  }

  /** Cgroup id of a path as /proc/<pid>/cgroup shows it (relative inside a cgroup namespace). */
  cgroupIdOfProcPath(procPath: string): bigint | undefined {
    return this.index.idOfProcPath(procPath);
  }

  isLiveRef(ref: EndpointRef): boolean {
    if (ref.cgroupId !== 0n) return this.index.isLive(ref.cgroupId);
    return this.netns ? this.netns.isLive(ref.netnsIno) : false;
  }

  /** Drops the cached endpoint of a removed cgroup or netns (ids are not reused, so nothing else changes). */
  forgetRef(ref: EndpointRef): void {
    let endpoint: LocalEndpoint | undefined;
    if (ref.cgroupId !== 0n) {
      endpoint = this.endpoints.get(ref.cgroupId);
      this.endpoints.delete(ref.cgroupId);
    } else {
      endpoint = this.netnsEndpoints.get(ref.netnsIno);
      this.netnsEndpoints.delete(ref.netnsIno);
    }
    // A pod's key belongs to its one cgroup (container) or netns; node and unknown keys stay.
    if (endpoint?.kind === 'pod') this.keyIds.delete(endpoint.key);
  }

  private forgetPeers(): void {
    for (const entry of this.peers.values()) entry.stale = true;
    this.peers.clear();
  }

  private freeze(key: string, attributes: Attributes, podUid?: string): LocalEndpoint {
    const kind = attributes[ATTR_FLOWTEL_ATTRIBUTION] as LocalEndpoint['kind'];
    let keyId = this.keyIds.get(key);
    if (keyId === undefined) this.keyIds.set(key, (keyId = kind === 'pod' ? `p${this.nextKeyId++}` : key));
    return Object.freeze({ key, keyId, attributes: Object.freeze(attributes), kind, ...(podUid ? { podUid } : {}) });
  }
}
