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

export interface LocalEndpoint {
  /** Stable identity of the attribute set, for aggregating rows that share it. */
  readonly key: string;
  readonly attributes: Attributes;
  readonly kind: 'pod' | 'node' | 'unknown';
  readonly podUid?: string;
}

export class CgroupAttribution {
  private readonly endpoints = new Map<bigint, LocalEndpoint>();
  private readonly node: LocalEndpoint;
  private readonly unknown: LocalEndpoint;

  constructor(
    private readonly index: CgroupIndex,
    private readonly nodeName: string,
  ) {
    this.node = this.freeze('node', { [ATTR_K8S_NODE_NAME]: nodeName, [ATTR_FLOWTEL_ATTRIBUTION]: ATTRIBUTION_NODE });
    this.unknown = this.freeze('unknown', { [ATTR_K8S_NODE_NAME]: nodeName, [ATTR_FLOWTEL_ATTRIBUTION]: ATTRIBUTION_UNKNOWN });
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
      };
      if (pod.containerId) attributes[ATTR_CONTAINER_ID] = pod.containerId;
      endpoint = this.freeze(`pod/${pod.podUid}/${pod.containerId ?? ''}`, attributes, pod.podUid);
    }
    this.endpoints.set(cgroupId, endpoint);
    return endpoint;
  }

  /** True while the cgroup exists (as of the index's last walk). */
  isLive(cgroupId: bigint): boolean {
    return this.index.isLive(cgroupId);
  }

  /** Forgets a cgroup whose rows were retired. */
  forget(cgroupId: bigint): void {
    this.endpoints.delete(cgroupId);
  }

  private freeze(key: string, attributes: Attributes, podUid?: string): LocalEndpoint {
    const kind = attributes[ATTR_FLOWTEL_ATTRIBUTION] as LocalEndpoint['kind'];
    return Object.freeze({ key, attributes: Object.freeze(attributes), kind, ...(podUid ? { podUid } : {}) });
  }
}
