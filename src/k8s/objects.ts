/**
 * Raw Kubernetes JSON reduced to what attribution uses. Everything else is
 * dropped on arrival so 10,000 pods cost megabytes, not a full object cache.
 *
 * Owner workloads are derived, not watched: a pod owned by ReplicaSet R with
 * label pod-template-hash=H where R = <d>-H belongs to Deployment d; a pod
 * owned by Job J = <c>-<8+ digits> (the CronJob's scheduled minute) belongs to
 * CronJob c. This spares watching every ReplicaSet and Job in the cluster
 * (more API load and memory than the pods themselves in many clusters); a
 * ReplicaSet or Job created by hand that happens to follow those name shapes
 * would be misnamed, which we accept and document.
 */

export type WorkloadKind = 'deployment' | 'replicaset' | 'statefulset' | 'daemonset' | 'job' | 'cronjob';

export interface PodInfo {
  uid: string;
  name: string;
  namespace: string;
  nodeName: string;
  ips: string[];
  hostNetwork: boolean;
  labels: Record<string, string>;
  workload?: { kind: WorkloadKind; name: string };
  /** container id (64 hex, no runtime prefix) → container name */
  containers: Record<string, string>;
}

export interface ServiceInfo {
  name: string;
  namespace: string;
  clusterIps: string[];
}

export interface NodeInfo {
  name: string;
  ips: string[];
}

type Raw = Record<string, unknown>;
const asRecord = (v: unknown): Raw => (v && typeof v === 'object' ? (v as Raw) : {});
const asArray = (v: unknown): Raw[] => (Array.isArray(v) ? (v as Raw[]) : []);
const asString = (v: unknown): string => (typeof v === 'string' ? v : '');

function ownerWorkload(ownerRefs: Raw[], labels: Record<string, string>): PodInfo['workload'] {
  const owner = ownerRefs.find((o) => o.controller === true) ?? ownerRefs[0];
  if (!owner) return undefined;
  const kind = asString(owner.kind);
  const name = asString(owner.name);
  switch (kind) {
    case 'ReplicaSet': {
      const hash = labels['pod-template-hash'];
      if (hash && name.endsWith(`-${hash}`)) return { kind: 'deployment', name: name.slice(0, -(hash.length + 1)) };
      return { kind: 'replicaset', name };
    }
    case 'Job': {
      const m = /^(.+)-(\d{8,})$/.exec(name);
      return m ? { kind: 'cronjob', name: m[1] } : { kind: 'job', name };
    }
    case 'StatefulSet':
      return { kind: 'statefulset', name };
    case 'DaemonSet':
      return { kind: 'daemonset', name };
    default:
      return undefined;
  }
}

/** "containerd://<id>" → "<id>" */
export function bareContainerId(id: string): string {
  const at = id.indexOf('://');
  return at >= 0 ? id.slice(at + 3) : id;
}

export function toPodInfo(raw: Raw): PodInfo | undefined {
  const meta = asRecord(raw.metadata);
  const spec = asRecord(raw.spec);
  const status = asRecord(raw.status);
  const uid = asString(meta.uid);
  if (!uid) return undefined;
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(asRecord(meta.labels))) if (typeof v === 'string') labels[k] = v;
  const ips = asArray(status.podIPs)
    .map((p) => asString(p.ip))
    .filter(Boolean);
  if (ips.length === 0 && asString(status.podIP)) ips.push(asString(status.podIP));
  const containers: Record<string, string> = {};
  for (const list of [status.containerStatuses, status.initContainerStatuses, status.ephemeralContainerStatuses]) {
    for (const c of asArray(list)) {
      const id = bareContainerId(asString(c.containerID));
      if (id) containers[id] = asString(c.name);
    }
  }
  const workload = ownerWorkload(asArray(meta.ownerReferences), labels);
  return {
    uid,
    name: asString(meta.name),
    namespace: asString(meta.namespace),
    nodeName: asString(spec.nodeName),
    ips,
    hostNetwork: spec.hostNetwork === true,
    labels,
    ...(workload ? { workload } : {}),
    containers,
  };
}

export function toServiceInfo(raw: Raw): ServiceInfo | undefined {
  const meta = asRecord(raw.metadata);
  const spec = asRecord(raw.spec);
  const ips = asArray(spec.clusterIPs).length ? (spec.clusterIPs as unknown[]).map(asString) : [asString(spec.clusterIP)];
  const clusterIps = ips.filter((ip) => ip && ip !== 'None');
  return { name: asString(meta.name), namespace: asString(meta.namespace), clusterIps };
}

export function toNodeInfo(raw: Raw): NodeInfo | undefined {
  const meta = asRecord(raw.metadata);
  const addresses = asArray(asRecord(raw.status).addresses);
  const ips = addresses
    .filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP')
    .map((a) => asString(a.address))
    .filter(Boolean);
  return { name: asString(meta.name), ips };
}
