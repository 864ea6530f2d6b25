/**
 * The Kubernetes metadata cache: pods on this node (local identity), and,
 * when peers are resolved, all pods, services and nodes (remote identity by
 * IP). Reflectors keep reduced objects; this module turns them into the
 * attributes of DESIGN §6 and keeps deleted pods for a grace period so late
 * events still resolve.
 */
import type { Attributes } from '@opentelemetry/api';
import type { AgentLog } from '../util/log';
import {
  ATTR_FLOWTEL_PEER_KIND,
  ATTR_K8S_CONTAINER_NAME,
  ATTR_K8S_NAMESPACE_NAME,
  ATTR_K8S_NODE_NAME,
  ATTR_K8S_POD_NAME,
  ATTR_K8S_POD_UID,
  ATTR_K8S_SERVICE_NAME,
  ATTR_SERVICE_NAME,
  PEER_PREFIX,
  k8sPodLabelKey,
  WORKLOAD_NAME_KEYS,
} from '../semconv';
import type { KubeClient } from './kube-client';
import { toNodeInfo, toPodInfo, toServiceInfo, type NodeInfo, type PodInfo, type ServiceInfo } from './objects';
import { Reflector, type ReflectorStats } from './reflector';

export interface KubernetesMetadataOptions {
  client: KubeClient;
  nodeName: string;
  /** Watch every pod, service and node to name remote peers. */
  resolvePeers: boolean;
  /** Pod label keys copied to k8s.pod.label.<key>. */
  podLabels: string[];
  deletedPodGracePeriodMs: number;
  log: AgentLog;
  now?: () => number;
}

export type PeerKind = 'pod' | 'service' | 'node' | 'external';

/**
 * service.name of a pod, so our data lines up with the application's traces:
 * the app.kubernetes.io/name label, else the app label, else the workload's
 * name, else the pod's name.
 */
export function serviceNameOf(pod: PodInfo): string {
  return pod.labels['app.kubernetes.io/name'] || pod.labels.app || pod.workload?.name || pod.name;
}

/** The identity of an address no Kubernetes object owns. */
const EXTERNAL_PEER: Attributes = Object.freeze({ [ATTR_FLOWTEL_PEER_KIND]: 'external' });

export class KubernetesMetadata {
  private readonly reflectors: Array<Reflector<unknown>> = [];
  private readonly podsByUid = new Map<string, PodInfo>();
  private readonly deleted = new Map<string, { pod: PodInfo; until: number }>();
  private readonly podsByIp = new Map<string, PodInfo>();
  private readonly servicesByIp = new Map<string, ServiceInfo>();
  private readonly nodesByIp = new Map<string, NodeInfo>();
  private readonly podAttributes = new Map<string, Attributes>();
  private readonly listeners: Array<(podUid: string) => void> = [];
  private readonly peerListeners: Array<(address: string) => void> = [];
  private readonly now: () => number;

  constructor(private readonly options: KubernetesMetadataOptions) {
    this.now = options.now ?? Date.now;
    const { client, log, nodeName } = options;
    const local = new Reflector<PodInfo>({
      resource: 'pods',
      path: '/api/v1/pods',
      fieldSelector: `spec.nodeName=${nodeName}`,
      transform: toPodInfo,
      onUpsert: (_key, pod) => this.podSeen(pod),
      onDelete: (_key, pod) => this.podGone(pod),
      client,
      log,
    });
    this.reflectors.push(local as Reflector<unknown>);
    if (options.resolvePeers) {
      const all = new Reflector<PodInfo>({
        resource: 'pods (cluster)',
        path: '/api/v1/pods',
        transform: toPodInfo,
        onUpsert: (_key, pod) => this.indexPodIps(pod),
        onDelete: (_key, pod) => this.unindexPodIps(pod),
        client,
        log,
      });
      const services = new Reflector<ServiceInfo>({
        resource: 'services',
        path: '/api/v1/services',
        transform: toServiceInfo,
        onUpsert: (_key, s) => s.clusterIps.forEach((ip) => this.setPeer(this.servicesByIp, ip, s, (x) => `${x.namespace}/${x.name}`)),
        onDelete: (_key, s) => s.clusterIps.forEach((ip) => this.deletePeer(this.servicesByIp, ip, s)),
        client,
        log,
      });
      const nodes = new Reflector<NodeInfo>({
        resource: 'nodes',
        path: '/api/v1/nodes',
        transform: toNodeInfo,
        onUpsert: (_key, n) => n.ips.forEach((ip) => this.setPeer(this.nodesByIp, ip, n, (x) => x.name)),
        onDelete: (_key, n) => n.ips.forEach((ip) => this.deletePeer(this.nodesByIp, ip, n)),
        client,
        log,
      });
      this.reflectors.push(all as Reflector<unknown>, services as Reflector<unknown>, nodes as Reflector<unknown>);
    }
  }

  start(): void {
    for (const r of this.reflectors) r.start();
  }

  stop(): void {
    for (const r of this.reflectors) r.stop();
  }

  /** Resolves once every reflector has listed once. */
  synced(): Promise<void> {
    return Promise.all(this.reflectors.map((r) => r.synced())).then(() => undefined);
  }

  stats(): Array<{ resource: string } & ReflectorStats> {
    return this.reflectors.map((r) => ({ resource: r.resource, ...r.stats }));
  }

  /** Called with a pod uid whenever what we know of that pod changes. */
  onPodChange(listener: (podUid: string) => void): void {
    this.listeners.push(listener);
  }

  /** Called with an address whenever the pod, service or node that owns it changes (peer identities cached per address). */
  onPeerChange(listener: (address: string) => void): void {
    this.peerListeners.push(listener);
  }

  /** Attributes of a local pod (and its container), or undefined while the pod is unknown. */
  podAttributesOf(podUid: string, containerId?: string): Attributes | undefined {
    const pod = this.podsByUid.get(podUid) ?? this.liveTombstone(podUid);
    if (!pod) return undefined;
    let base = this.podAttributes.get(podUid);
    if (!base) {
      base = this.buildPodAttributes(pod);
      this.podAttributes.set(podUid, base);
    }
    const containerName = containerId ? pod.containers[containerId] : undefined;
    return containerName ? { ...base, [ATTR_K8S_CONTAINER_NAME]: containerName } : base;
  }

  /** Who a remote address is: a pod, a service's ClusterIP, a node, or external; attributes under the peer prefix. */
  peerOf(address: string): { kind: PeerKind; attributes: Attributes } {
    const pod = this.podsByIp.get(address);
    if (pod) {
      const attributes: Attributes = {
        [ATTR_FLOWTEL_PEER_KIND]: 'pod',
        [`${PEER_PREFIX}${ATTR_K8S_NAMESPACE_NAME}`]: pod.namespace,
        [`${PEER_PREFIX}${ATTR_K8S_POD_NAME}`]: pod.name,
        [`${PEER_PREFIX}${ATTR_SERVICE_NAME}`]: serviceNameOf(pod),
      };
      if (pod.workload) attributes[`${PEER_PREFIX}${WORKLOAD_NAME_KEYS[pod.workload.kind]}`] = pod.workload.name;
      return { kind: 'pod', attributes };
    }
    const service = this.servicesByIp.get(address);
    if (service) {
      return {
        kind: 'service',
        attributes: {
          [ATTR_FLOWTEL_PEER_KIND]: 'service',
          [`${PEER_PREFIX}${ATTR_K8S_NAMESPACE_NAME}`]: service.namespace,
          [`${PEER_PREFIX}${ATTR_K8S_SERVICE_NAME}`]: service.name,
        },
      };
    }
    const node = this.nodesByIp.get(address);
    if (node) return { kind: 'node', attributes: { [ATTR_FLOWTEL_PEER_KIND]: 'node', [`${PEER_PREFIX}${ATTR_K8S_NODE_NAME}`]: node.name } };
    // One frozen object for every external address: a node may talk to 100,000 of them.
    return { kind: 'external', attributes: EXTERNAL_PEER };
  }

  private buildPodAttributes(pod: PodInfo): Attributes {
    const attributes: Attributes = {
      [ATTR_K8S_NAMESPACE_NAME]: pod.namespace,
      [ATTR_K8S_POD_NAME]: pod.name,
      [ATTR_K8S_POD_UID]: pod.uid,
      [ATTR_SERVICE_NAME]: serviceNameOf(pod),
    };
    if (pod.workload) attributes[WORKLOAD_NAME_KEYS[pod.workload.kind]] = pod.workload.name;
    for (const key of this.options.podLabels) {
      const value = pod.labels[key];
      if (value !== undefined) attributes[k8sPodLabelKey(key)] = value;
    }
    return attributes;
  }

  private podSeen(pod: PodInfo): void {
    const before = this.podsByUid.get(pod.uid) ?? this.deleted.get(pod.uid)?.pod;
    this.podsByUid.set(pod.uid, pod);
    this.deleted.delete(pod.uid);
    if (!this.options.resolvePeers) this.indexPodIps(pod);
    // Status updates are frequent; listeners re-resolve (every cached map row of the node) only when names change.
    if (before && this.sameNames(before, pod)) return;
    this.podAttributes.delete(pod.uid);
    this.changed(pod.uid);
  }

  private podGone(pod: PodInfo): void {
    this.podsByUid.delete(pod.uid);
    const now = this.now();
    // Tombstones are otherwise dropped only when looked up again; a node running many short pods must not keep them all.
    for (const [uid, entry] of this.deleted) if (entry.until <= now) this.liveTombstone(uid);
    this.deleted.set(pod.uid, { pod, until: now + this.options.deletedPodGracePeriodMs });
    if (!this.options.resolvePeers) this.unindexPodIps(pod);
  }

  /** Whether two versions of a pod give its endpoints the same attributes. */
  private sameNames(a: PodInfo, b: PodInfo): boolean {
    return JSON.stringify([this.buildPodAttributes(a), a.containers]) === JSON.stringify([this.buildPodAttributes(b), b.containers]);
  }

  private liveTombstone(podUid: string): PodInfo | undefined {
    const entry = this.deleted.get(podUid);
    if (!entry) return undefined;
    if (entry.until > this.now()) return entry.pod;
    this.deleted.delete(podUid);
    this.podAttributes.delete(podUid);
    this.changed(podUid);
    return undefined;
  }

  private indexPodIps(pod: PodInfo): void {
    if (pod.hostNetwork) return; // its IP is the node's
    for (const ip of pod.ips) {
      const before = this.podsByIp.get(ip);
      this.podsByIp.set(ip, pod);
      // Pod status updates are frequent in a large cluster; only a change of what peers are called counts.
      if (!before || before.uid !== pod.uid || serviceNameOf(before) !== serviceNameOf(pod)) this.peerChanged(ip);
    }
  }

  private unindexPodIps(pod: PodInfo): void {
    for (const ip of pod.ips) {
      if (this.podsByIp.get(ip)?.uid !== pod.uid) continue;
      this.podsByIp.delete(ip);
      this.peerChanged(ip);
    }
  }

  /** Indexes an address; listeners hear of it only when its owner's name changes (node heartbeats do not count). */
  private setPeer<T>(index: Map<string, T>, ip: string, owner: T, nameOf: (owner: T) => string): void {
    const before = index.get(ip);
    index.set(ip, owner);
    if (before === undefined || nameOf(before) !== nameOf(owner)) this.peerChanged(ip);
  }

  private deletePeer<T>(index: Map<string, T>, ip: string, owner: T): void {
    if (index.get(ip) !== owner) return;
    index.delete(ip);
    this.peerChanged(ip);
  }

  private peerChanged(address: string): void {
    for (const listener of this.peerListeners) listener(address);
  }

  private changed(podUid: string): void {
    for (const listener of this.listeners) listener(podUid);
  }
}
