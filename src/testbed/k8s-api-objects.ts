/**
 * Kubernetes objects for the test API server: the resource types it serves
 * and builders for Pods, Services, Nodes, ReplicaSets and Jobs shaped like
 * what a real cluster returns (the fields an agent reads, filled the way
 * kubelet and the controllers fill them), so code tested against them meets
 * no surprises on a real cluster.
 */
import crypto from 'node:crypto';

/** Any Kubernetes object: the server needs only TypeMeta and ObjectMeta, the rest is passed through. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ResourceType {
  kind: string;
  listKind: string;
  /** The URL segment and the RBAC resource name. */
  plural: string;
  /** '' for the core group. */
  group: string;
  version: string;
  apiVersion: string;
  namespaced: boolean;
  /** Field selector keys the real API server accepts for this resource (besides metadata.name/namespace). */
  fieldLabels: string[];
}

function resourceType(kind: string, plural: string, group: string, namespaced: boolean, fieldLabels: string[] = []): ResourceType {
  const version = 'v1';
  return {
    kind,
    listKind: `${kind}List`,
    plural,
    group,
    version,
    apiVersion: group ? `${group}/${version}` : version,
    namespaced,
    fieldLabels: ['metadata.name', 'metadata.namespace', ...fieldLabels],
  };
}

/** What the server serves; field labels as in the real registries (pkg/registry/.../strategy.go). */
export const RESOURCE_TYPES: readonly ResourceType[] = [
  resourceType('Pod', 'pods', '', true, [
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.nominatedNodeName',
  ]),
  resourceType('Service', 'services', '', true),
  resourceType('Node', 'nodes', '', false, ['spec.unschedulable']),
  resourceType('Namespace', 'namespaces', '', false, ['status.phase']),
  resourceType('ReplicaSet', 'replicasets', 'apps', true, ['status.replicas']),
  resourceType('Deployment', 'deployments', 'apps', true),
  resourceType('DaemonSet', 'daemonsets', 'apps', true),
  resourceType('StatefulSet', 'statefulsets', 'apps', true),
  resourceType('Job', 'jobs', 'batch', true, ['status.successful']),
  resourceType('CronJob', 'cronjobs', 'batch', true),
];

const byKind = new Map(RESOURCE_TYPES.map((t) => [t.kind.toLowerCase(), t]));
const byPlural = new Map(RESOURCE_TYPES.map((t) => [`${t.group}/${t.plural}`, t]));

/** The resource type of a kind ('Pod') or plural ('pods'), case-insensitive. */
export function resourceTypeOf(kindOrPlural: string): ResourceType {
  const key = kindOrPlural.toLowerCase();
  const t = byKind.get(key) ?? RESOURCE_TYPES.find((r) => r.plural === key);
  if (!t) throw new Error(`the test API server does not serve ${kindOrPlural}`);
  return t;
}

export function resourceTypeAt(group: string, plural: string): ResourceType | undefined {
  return byPlural.get(`${group}/${plural}`);
}

/** A containerd container id: 64 hex digits (two UUIDs' worth: a tenth of randomBytes' cost, which counts at 10,000 pods). */
export function randomContainerId(): string {
  return (crypto.randomUUID() + crypto.randomUUID()).replace(/-/g, '');
}

const imageDigests = new Map<string, string>();

/** The imageID kubelet reports: repository@sha256:digest (made up, but stable per image). */
function imageId(image: string): string {
  let digest = imageDigests.get(image);
  if (digest === undefined) {
    digest = crypto.createHash('sha256').update(image).digest('hex');
    imageDigests.set(image, digest);
  }
  return `${image.split(':')[0]}@sha256:${digest}`;
}

/** The ownerReference a controller puts on what it creates. */
export function ownerReference(owner: { apiVersion: string; kind: string; metadata: { name: string; uid?: string } }): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid ?? crypto.randomUUID(),
    controller: true,
    blockOwnerDeletion: true,
  };
}

type OwnerName = string | { name: string; uid: string };

function controllerRef(apiVersion: string, kind: string, owner: OwnerName): OwnerReference {
  const o = typeof owner === 'string' ? { name: owner, uid: crypto.randomUUID() } : owner;
  return { apiVersion, kind, name: o.name, uid: o.uid, controller: true, blockOwnerDeletion: true };
}

function meta(name: string, namespace: string | undefined, uid: string | undefined, labels: Record<string, string> | undefined): ObjectMeta {
  return {
    name,
    ...(namespace !== undefined ? { namespace } : {}),
    uid: uid ?? crypto.randomUUID(),
    creationTimestamp: now(),
    ...(labels && Object.keys(labels).length ? { labels: { ...labels } } : {}),
  };
}

/** RFC 3339 at second precision, the way the API server writes timestamps. */
function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

// ---- Pod ----------------------------------------------------------------------------------

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

export interface ContainerSpec {
  name: string;
  /** `containerd://<64 hex>`; a random one if omitted. */
  containerID?: string;
  image?: string;
  ports?: Array<{ name?: string; containerPort: number; protocol?: 'TCP' | 'UDP' | 'SCTP' }>;
}

export interface PodSpec {
  name: string;
  namespace?: string;
  uid?: string;
  nodeName?: string;
  podIP?: string;
  /** Defaults to podIP; a dual-stack pod lists both families. */
  podIPs?: string[];
  hostIP?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  containers?: ContainerSpec[];
  qosClass?: QosClass;
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  hostNetwork?: boolean;
  serviceAccountName?: string;
}

/** Resource requests and limits that make kubelet compute the given QoS class. */
function resourcesFor(qos: QosClass): Record<string, unknown> {
  if (qos === 'Guaranteed') return { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '100m', memory: '64Mi' } };
  if (qos === 'Burstable') return { requests: { cpu: '50m', memory: '32Mi' } };
  return {};
}

export function makePod(spec: PodSpec): KubeObject {
  const qosClass = spec.qosClass ?? 'BestEffort';
  const phase = spec.phase ?? 'Running';
  const running = phase === 'Running';
  const containers = spec.containers?.length ? spec.containers : [{ name: 'app' }];
  const started = now();
  const podIPs = spec.podIPs ?? (spec.podIP ? [spec.podIP] : []);
  const metadata = meta(spec.name, spec.namespace ?? 'default', spec.uid, spec.labels);
  if (spec.annotations) metadata.annotations = { ...spec.annotations };
  if (spec.ownerReferences?.length) metadata.ownerReferences = spec.ownerReferences.map((r) => ({ ...r }));
  const condition = (type: string, status: boolean) => ({ type, status: status ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: started });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec: {
      containers: containers.map((c) => ({
        name: c.name,
        image: c.image ?? 'registry.k8s.io/e2e-test-images/agnhost:2.53',
        ...(c.ports ? { ports: c.ports.map((p) => ({ protocol: 'TCP', ...p })) } : {}),
        resources: resourcesFor(qosClass),
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
        imagePullPolicy: 'IfNotPresent',
      })),
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: spec.serviceAccountName ?? 'default',
      ...(spec.nodeName ? { nodeName: spec.nodeName } : {}),
      ...(spec.hostNetwork ? { hostNetwork: true } : {}),
      securityContext: {},
      schedulerName: 'default-scheduler',
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      priority: 0,
    },
    status: {
      phase,
      conditions: [
        condition('PodReadyToStartContainers', running),
        condition('Initialized', true),
        condition('Ready', running),
        condition('ContainersReady', running),
        condition('PodScheduled', Boolean(spec.nodeName)),
      ],
      ...(spec.hostIP ? { hostIP: spec.hostIP, hostIPs: [{ ip: spec.hostIP }] } : {}),
      ...(spec.podIP || podIPs.length ? { podIP: spec.podIP ?? podIPs[0], podIPs: podIPs.map((ip) => ({ ip })) } : {}),
      startTime: started,
      containerStatuses: containers.map((c) => {
        const image = c.image ?? 'registry.k8s.io/e2e-test-images/agnhost:2.53';
        return {
          name: c.name,
          state: running ? { running: { startedAt: started } } : { waiting: { reason: 'ContainerCreating' } },
          lastState: {},
          ready: running,
          restartCount: 0,
          image,
          imageID: imageId(image),
          containerID: c.containerID ?? `containerd://${randomContainerId()}`,
          started: running,
        };
      }),
      qosClass,
    },
  };
}

// ---- Service ------------------------------------------------------------------------------

export interface ServiceSpec {
  name: string;
  namespace?: string;
  uid?: string;
  clusterIP?: string;
  selector?: Record<string, string>;
  ports?: Array<{ name?: string; port: number; targetPort?: number | string; protocol?: 'TCP' | 'UDP' | 'SCTP'; nodePort?: number }>;
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  labels?: Record<string, string>;
}

export function makeService(spec: ServiceSpec): KubeObject {
  const clusterIP = spec.clusterIP ?? 'None';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(spec.name, spec.namespace ?? 'default', spec.uid, spec.labels),
    spec: {
      ...(spec.selector ? { selector: { ...spec.selector } } : {}),
      ports: (spec.ports ?? []).map((p) => ({ protocol: 'TCP', targetPort: p.port, ...p })),
      clusterIP,
      clusterIPs: [clusterIP],
      type: spec.type ?? 'ClusterIP',
      sessionAffinity: 'None',
      ipFamilies: [clusterIP.includes(':') ? 'IPv6' : 'IPv4'],
      ipFamilyPolicy: 'SingleStack',
      internalTrafficPolicy: 'Cluster',
    },
    status: { loadBalancer: {} },
  };
}

// ---- Node ---------------------------------------------------------------------------------

export interface NodeSpec {
  name: string;
  uid?: string;
  internalIP: string;
  podCIDR?: string;
  labels?: Record<string, string>;
}

export function makeNode(spec: NodeSpec): KubeObject {
  const heartbeat = now();
  const labels = {
    'kubernetes.io/arch': 'amd64',
    'kubernetes.io/hostname': spec.name,
    'kubernetes.io/os': 'linux',
    'beta.kubernetes.io/arch': 'amd64',
    'beta.kubernetes.io/os': 'linux',
    ...spec.labels,
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: meta(spec.name, undefined, spec.uid, labels),
    spec: spec.podCIDR ? { podCIDR: spec.podCIDR, podCIDRs: [spec.podCIDR] } : {},
    status: {
      addresses: [
        { type: 'InternalIP', address: spec.internalIP },
        { type: 'Hostname', address: spec.name },
      ],
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'kubelet is posting ready status',
          lastHeartbeatTime: heartbeat,
          lastTransitionTime: heartbeat,
        },
      ],
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        kernelVersion: '6.1.0',
        containerRuntimeVersion: 'containerd://1.7.22',
        kubeletVersion: 'v1.31.4',
        kubeProxyVersion: 'v1.31.4',
        machineID: crypto.createHash('md5').update(spec.name).digest('hex'),
        systemUUID: crypto.randomUUID(),
        bootID: crypto.randomUUID(),
      },
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
    },
  };
}

// ---- Workload controllers -----------------------------------------------------------------

export interface ReplicaSetSpec {
  name: string;
  namespace?: string;
  uid?: string;
  /** The owning Deployment: its name (a uid is made up) or name and uid. */
  ownerDeployment?: OwnerName;
  labels?: Record<string, string>;
  replicas?: number;
}

export function makeReplicaSet(spec: ReplicaSetSpec): KubeObject {
  // A Deployment names its ReplicaSets <deployment>-<pod-template-hash>.
  const hash = spec.name.includes('-') ? spec.name.slice(spec.name.lastIndexOf('-') + 1) : 'abcdef123';
  const labels = { ...(spec.labels ?? { app: spec.name }), 'pod-template-hash': hash };
  const replicas = spec.replicas ?? 1;
  const metadata = meta(spec.name, spec.namespace ?? 'default', spec.uid, labels);
  if (spec.ownerDeployment) metadata.ownerReferences = [controllerRef('apps/v1', 'Deployment', spec.ownerDeployment)];
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata,
    spec: {
      replicas,
      selector: { matchLabels: { ...labels } },
      template: { metadata: { labels: { ...labels } }, spec: { containers: [{ name: 'app', image: 'registry.k8s.io/e2e-test-images/agnhost:2.53' }] } },
    },
    status: { replicas, fullyLabeledReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas, observedGeneration: 1 },
  };
}

export interface JobSpec {
  name: string;
  namespace?: string;
  uid?: string;
  /** The owning CronJob: its name (a uid is made up) or name and uid. */
  ownerCronJob?: OwnerName;
  labels?: Record<string, string>;
}

export function makeJob(spec: JobSpec): KubeObject {
  const metadata = meta(spec.name, spec.namespace ?? 'default', spec.uid, spec.labels);
  const uid = metadata.uid as string;
  // The job controller selects its pods by its own uid.
  const podLabels = { 'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': spec.name, 'controller-uid': uid, 'job-name': spec.name };
  if (spec.ownerCronJob) metadata.ownerReferences = [controllerRef('batch/v1', 'CronJob', spec.ownerCronJob)];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata,
    spec: {
      parallelism: 1,
      completions: 1,
      backoffLimit: 6,
      completionMode: 'NonIndexed',
      suspend: false,
      selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } },
      template: {
        metadata: { labels: podLabels },
        spec: { containers: [{ name: 'job', image: 'registry.k8s.io/e2e-test-images/agnhost:2.53' }], restartPolicy: 'Never' },
      },
    },
    status: { active: 1, startTime: metadata.creationTimestamp, ready: 1, terminating: 0, uncountedTerminatedPods: {} },
  };
}
