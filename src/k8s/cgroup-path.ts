/**
 * Reads pod and container identity out of a kubelet cgroup path. Kubelet
 * names pod cgroups after the pod uid and QoS class, and runtimes name
 * container cgroups after the container id, so the path alone attributes a
 * socket before (or without) any Kubernetes API access.
 *
 *   systemd driver:  kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
 *   cgroupfs driver: kubepods/burstable/pod<uid>/<id>
 *
 * The kubepods part may sit below a prefix (kind nodes, nested kubelets), so
 * it is searched anywhere in the path.
 */

export type QosClass = 'guaranteed' | 'burstable' | 'besteffort';
export type CgroupDriver = 'systemd' | 'cgroupfs';
export type ContainerRuntime = 'containerd' | 'cri-o' | 'docker' | 'unknown';

export interface PodCgroupIdentity {
  podUid: string;
  qosClass: QosClass;
  driver: CgroupDriver;
  /** Absent for the pod-level cgroup itself and for runtime helper cgroups (conmon). */
  containerId?: string;
  runtime?: ContainerRuntime;
}

const UID = '[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}';
const CONTAINER_ID = '[0-9a-f]{64}';

const SYSTEMD_POD = new RegExp(`^(?:[a-z0-9_.-]*-)?kubepods(?:-(burstable|besteffort))?-pod(${UID})\\.slice$`);
const SYSTEMD_CONTAINER = new RegExp(`^(cri-containerd|crio|docker)-(${CONTAINER_ID})\\.scope$`);
const CGROUPFS_POD = new RegExp(`^pod(${UID})$`);
const CGROUPFS_CONTAINER = new RegExp(`^(?:(crio|docker|cri-containerd)-)?(${CONTAINER_ID})(?:\\.scope)?$`);

const RUNTIME_BY_PREFIX: Record<string, ContainerRuntime> = {
  'cri-containerd': 'containerd',
  crio: 'cri-o',
  docker: 'docker',
};

function normalizeUid(raw: string): string {
  return raw.replace(/_/g, '-');
}

function parseSystemd(segments: string[]): PodCgroupIdentity | undefined {
  for (let i = 0; i < segments.length; i++) {
    const pod = SYSTEMD_POD.exec(segments[i]);
    if (!pod) continue;
    const identity: PodCgroupIdentity = {
      podUid: normalizeUid(pod[2]),
      qosClass: (pod[1] as QosClass | undefined) ?? 'guaranteed',
      driver: 'systemd',
    };
    const container = i + 1 < segments.length ? SYSTEMD_CONTAINER.exec(segments[i + 1]) : null;
    if (container) {
      identity.containerId = container[2];
      identity.runtime = RUNTIME_BY_PREFIX[container[1]];
    }
    return identity;
  }
  return undefined;
}

function parseCgroupfs(segments: string[]): PodCgroupIdentity | undefined {
  const root = segments.indexOf('kubepods');
  if (root < 0) return undefined;
  let i = root + 1;
  let qosClass: QosClass = 'guaranteed';
  if (segments[i] === 'burstable' || segments[i] === 'besteffort') {
    qosClass = segments[i] as QosClass;
    i++;
  }
  const pod = i < segments.length ? CGROUPFS_POD.exec(segments[i]) : null;
  if (!pod) return undefined;
  const identity: PodCgroupIdentity = { podUid: normalizeUid(pod[1]), qosClass, driver: 'cgroupfs' };
  const container = i + 1 < segments.length ? CGROUPFS_CONTAINER.exec(segments[i + 1]) : null;
  if (container) {
    identity.containerId = container[2];
    identity.runtime = container[1] ? RUNTIME_BY_PREFIX[container[1]] : 'unknown';
  }
  return identity;
}

/** Pod identity of a cgroup path (relative to the cgroup root or absolute), or undefined outside kubepods. */
export function parseKubeletCgroupPath(cgroupPath: string): PodCgroupIdentity | undefined {
  const segments = cgroupPath.split('/').filter((s) => s.length > 0);
  return parseSystemd(segments) ?? parseCgroupfs(segments);
}

/** The path segment(s) kubelet would create for a pod; used by the test node and `flowtel demo`. */
export function kubeletCgroupPath(options: {
  driver: CgroupDriver;
  qosClass: QosClass;
  podUid: string;
  containerId: string;
  runtime: Exclude<ContainerRuntime, 'unknown'>;
}): string {
  const { driver, qosClass, podUid, containerId, runtime } = options;
  const prefix = Object.entries(RUNTIME_BY_PREFIX).find(([, r]) => r === runtime)?.[0] ?? 'cri-containerd';
  if (driver === 'systemd') {
    const uid = podUid.replace(/-/g, '_');
    const qosSlice = qosClass === 'guaranteed' ? '' : `kubepods-${qosClass}.slice/`;
    const podSlice = qosClass === 'guaranteed' ? `kubepods-pod${uid}.slice` : `kubepods-${qosClass}-pod${uid}.slice`;
    return `kubepods.slice/${qosSlice}${podSlice}/${prefix}-${containerId}.scope`;
  }
  const qosDir = qosClass === 'guaranteed' ? '' : `${qosClass}/`;
  const container = runtime === 'cri-o' ? `crio-${containerId}` : containerId;
  return `kubepods/${qosDir}pod${podUid}/${container}`;
}
