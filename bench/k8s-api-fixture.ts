/**
 * The API-server side of the Kubernetes benchmarks, in a process of its own so
 * the benchmark process's RSS is the agent-side cache's only.
 *
 * Starts the test API server (src/testbed/k8s-api-server.ts), fills it with a
 * cluster shaped like a real one (Deployments → ReplicaSets → pods with
 * pod-template-hash, 1–3 containerd containers, pod IPs from the node's pod
 * CIDR; ClusterIP services selecting each Deployment; nodes), writes a
 * kubeconfig and a fixture description (JSON) into a temporary directory, and
 * prints that description as one JSON line on stdout when ready.
 *
 * It exits on SIGTERM/SIGINT and when its stdin closes, so it never outlives
 * the benchmark that spawned it (even one that crashed).
 *
 *   node dist/bench/k8s-api-fixture.js [--pods 10000] [--nodes 100] [--namespaces 50]
 *        [--services 2000] [--local-node bench-node-0] [--lean] [--dir DIR]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { K8sApiServer, makeNode, makePod, makeReplicaSet, makeService, ownerReference, type KubeObject } from '../src/testbed/k8s-api-server';

export interface FixtureOptions {
  pods: number;
  nodes: number;
  namespaces: number;
  services: number;
  /** The node the agent under test runs on: node 0. */
  localNode: string;
  /** Pods exactly as the builders make them: no volumes, tolerations or managedFields. */
  lean: boolean;
  dir?: string;
}

export interface SamplePod {
  ip: string;
  name: string;
  namespace: string;
  uid: string;
  deployment: string;
  nodeName: string;
  /** Bare container id (no runtime prefix) → container name. */
  containers: Record<string, string>;
}

/** What the fixture created: the ready line and fixture.json. */
export interface FixtureDescription {
  ready: true;
  pid: number;
  server: string;
  kubeconfig: string;
  dir: string;
  setupMs: number;
  options: FixtureOptions;
  expected: { localPods: number; clusterPods: number; services: number; nodes: number; replicaSets: number };
  /** Mean serialized size of a pod as listed (bytes). */
  meanPodJsonBytes: number;
  samples: {
    pods: SamplePod[];
    localPods: SamplePod[];
    services: Array<{ ip: string; name: string; namespace: string }>;
    nodes: Array<{ ip: string; name: string }>;
  };
}

export const DEFAULT_FIXTURE: FixtureOptions = { pods: 10_000, nodes: 100, namespaces: 50, services: 2_000, localNode: 'bench-node-0', lean: false };

/** Deterministic choices (mulberry32), so every run lists the same cluster shape. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The alphabet of Kubernetes' rand.SafeEncodeString (pod-template-hash, generated name suffixes).
const SAFE = 'bcdfghjklmnpqrstvwxz2456789';
const TEAMS = ['payments', 'checkout', 'catalog', 'search', 'identity', 'billing', 'shipping', 'ads', 'media', 'analytics', 'platform', 'growth'];
const COMPONENTS = ['api', 'web', 'worker', 'gateway', 'consumer', 'scheduler', 'cache', 'indexer', 'frontend', 'backend', 'sync', 'notifier'];
const SIDECARS = ['istio-proxy', 'log-shipper'];
const IMAGES = ['ghcr.io/acme/%s:1.14.2', 'registry.example.com/%s:2024.11.3', 'docker.io/acme/%s:v3.2.0'];

function nodeIp(n: number): string {
  return `10.240.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

/** Every node gets a /24 of 10.244.0.0/16 as its pod CIDR (nodes > 256 wrap into 10.245+). */
function podCidrBase(n: number): string {
  return `10.${244 + Math.floor(n / 256)}.${n % 256}`;
}

/** Fields every real pod carries that the builders leave out (the service-account volume, default tolerations, managedFields). */
function addRealPodFields(pod: KubeObject, rand: () => number): void {
  const suffix = Array.from({ length: 5 }, () => SAFE[Math.floor(rand() * SAFE.length)]).join('');
  const volume = `kube-api-access-${suffix}`;
  const spec = pod.spec as { containers: Array<Record<string, unknown>>; [k: string]: unknown };
  for (const c of spec.containers) {
    c.volumeMounts = [{ name: volume, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }];
    c.env = [
      { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
    ];
  }
  spec.volumes = [
    {
      name: volume,
      projected: {
        defaultMode: 420,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    },
  ];
  spec.tolerations = [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  ];
  const time = pod.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const fields = (names: string[]) => Object.fromEntries(names.map((n) => [`f:${n}`, {}]));
  pod.metadata.managedFields = [
    {
      manager: 'kube-controller-manager',
      operation: 'Update',
      apiVersion: 'v1',
      time,
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:metadata': { 'f:generateName': {}, 'f:labels': fields(Object.keys(pod.metadata.labels ?? {})), 'f:ownerReferences': {} },
        'f:spec': {
          'f:containers': {},
          'f:dnsPolicy': {},
          'f:enableServiceLinks': {},
          'f:restartPolicy': {},
          'f:schedulerName': {},
          'f:securityContext': {},
          'f:terminationGracePeriodSeconds': {},
        },
      },
    },
    {
      manager: 'kubelet',
      operation: 'Update',
      apiVersion: 'v1',
      time,
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:status': {
          'f:conditions': {},
          'f:containerStatuses': {},
          'f:hostIP': {},
          'f:hostIPs': {},
          'f:phase': {},
          'f:podIP': {},
          'f:podIPs': {},
          'f:startTime': {},
        },
      },
      subresource: 'status',
    },
  ];
}

/** Fills `api` with the cluster; returns what a client should see. */
export function populate(
  api: K8sApiServer,
  options: FixtureOptions,
): Omit<FixtureDescription, 'ready' | 'pid' | 'server' | 'kubeconfig' | 'dir' | 'setupMs' | 'options'> {
  const rand = rng(0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const safe = (n: number) => Array.from({ length: n }, () => SAFE[Math.floor(rand() * SAFE.length)]).join('');
  const nodeName = (n: number) => (n === 0 ? options.localNode : `bench-node-${n}`);

  for (let n = 0; n < options.nodes; n++) {
    api.create(
      makeNode({ name: nodeName(n), internalIP: nodeIp(n), podCIDR: `${podCidrBase(n)}.0/24`, labels: { 'topology.kubernetes.io/zone': `zone-${n % 3}` } }),
    );
  }

  // One Deployment (ReplicaSet + ClusterIP service) per `services`; its pods are spread round-robin.
  const deployments = Math.max(1, options.services);
  const namespaces = Array.from({ length: options.namespaces }, (_, i) => `bench-ns-${String(i).padStart(2, '0')}`);
  interface Deployment {
    name: string;
    namespace: string;
    hash: string;
    team: string;
    component: string;
    rs: KubeObject;
    containers: Array<{ name: string; image: string }>;
  }
  const deps: Deployment[] = [];
  const services: FixtureDescription['samples']['services'] = [];
  for (let d = 0; d < deployments; d++) {
    const team = pick(TEAMS);
    const component = pick(COMPONENTS);
    const name = `${team}-${component}-${d}`;
    const namespace = namespaces[d % namespaces.length];
    const hash = safe(10);
    const app = `${team}-${component}`;
    const labels = { app: name, 'app.kubernetes.io/name': app, 'app.kubernetes.io/instance': name, 'app.kubernetes.io/part-of': team, team };
    const rs = api.create(makeReplicaSet({ name: `${name}-${hash}`, namespace, ownerDeployment: name, labels, replicas: 5 }));
    // 1–3 containers: the app, then sidecars.
    const count = 1 + Math.floor(rand() * 3);
    const containers = [{ name: component, image: pick(IMAGES).replace('%s', app) }];
    for (let c = 1; c < count; c++) containers.push({ name: SIDECARS[c - 1], image: `docker.io/acme/${SIDECARS[c - 1]}:1.22.3` });
    deps.push({ name, namespace, hash, team, component, rs, containers });
    if (d < options.services) {
      // 10.96.0.0/12 is the default service CIDR; .0.1 is the kubernetes service.
      const clusterIP = `10.96.${Math.floor((d + 2) / 256)}.${(d + 2) % 256}`;
      api.create(
        makeService({ name, namespace, clusterIP, selector: { app: name }, labels: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
      );
      services.push({ ip: clusterIP, name, namespace });
    }
  }

  const perNode = new Array<number>(options.nodes).fill(0);
  const pods: SamplePod[] = [];
  let localPods = 0;
  let podJsonBytes = 0;
  for (let i = 0; i < options.pods; i++) {
    const dep = deps[i % deps.length];
    const n = i % options.nodes; // round-robin: 1% of the pods on each of 100 nodes
    const k = perNode[n]++;
    const ip = `${podCidrBase(n)}.${(k % 254) + 1}`;
    const name = `${dep.name}-${dep.hash}-${safe(5)}`;
    const containerIds = dep.containers.map(() => {
      let id = '';
      while (id.length < 64)
        id += Math.floor(rand() * 2 ** 32)
          .toString(16)
          .padStart(8, '0');
      return id;
    });
    const pod = makePod({
      name,
      namespace: dep.namespace,
      nodeName: nodeName(n),
      podIP: ip,
      hostIP: nodeIp(n),
      labels: { ...(dep.rs.metadata.labels ?? {}), 'app.kubernetes.io/version': '1.14.2' },
      annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090', 'kubectl.kubernetes.io/restartedAt': '2025-01-07T10:12:44Z' },
      ownerReferences: [ownerReference(dep.rs)],
      containers: dep.containers.map((c, j) => ({
        ...c,
        containerID: `containerd://${containerIds[j]}`,
        ports: j === 0 ? [{ name: 'http', containerPort: 8080 }] : undefined,
      })),
      qosClass: 'Burstable',
      serviceAccountName: dep.team,
    });
    pod.metadata.generateName = `${dep.name}-${dep.hash}-`;
    if (!options.lean) addRealPodFields(pod, rand);
    const stored = api.create(pod);
    podJsonBytes += JSON.stringify(stored).length;
    if (n === 0) localPods++;
    if (pods.length < 400) {
      pods.push({
        ip,
        name,
        namespace: dep.namespace,
        uid: stored.metadata.uid as string,
        deployment: dep.name,
        nodeName: nodeName(n),
        containers: Object.fromEntries(dep.containers.map((c, j) => [containerIds[j], c.name])),
      });
    }
  }

  const nodeSamples = [0, Math.floor(options.nodes / 2), options.nodes - 1].map((n) => ({ ip: nodeIp(n), name: nodeName(n) }));
  const every = <T>(xs: T[], count: number): T[] => xs.filter((_, i) => i % Math.max(1, Math.floor(xs.length / count)) === 0).slice(0, count);
  return {
    expected: { localPods, clusterPods: options.pods, services: options.services, nodes: options.nodes, replicaSets: deployments },
    meanPodJsonBytes: Math.round(podJsonBytes / Math.max(1, options.pods)),
    samples: {
      pods: every(pods, 8),
      localPods: pods.filter((p) => p.nodeName === options.localNode).slice(0, 4),
      services: every(services, 8),
      nodes: nodeSamples,
    },
  };
}

function parseArgs(argv: string[]): FixtureOptions {
  const o: FixtureOptions = { ...DEFAULT_FIXTURE };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const count = (): number => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0) throw new Error(`${a}: not a count`);
      return v;
    };
    if (a === '--pods') o.pods = count();
    else if (a === '--nodes') o.nodes = Math.max(1, count());
    else if (a === '--namespaces') o.namespaces = Math.max(1, count());
    else if (a === '--services') o.services = count();
    else if (a === '--local-node') o.localNode = value();
    else if (a === '--lean') o.lean = true;
    else if (a === '--dir') o.dir = value();
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'flowtel-bench-k8s-'));
  fs.mkdirSync(dir, { recursive: true });
  const api = await K8sApiServer.start();
  const shape = populate(api, options);
  // Nothing watches from before the fixture was filled: drop the creation history (memory of the fixture only).
  api.compact();
  const kubeconfig = path.join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  const description: FixtureDescription = {
    ready: true,
    pid: process.pid,
    server: api.url,
    kubeconfig,
    dir,
    setupMs: Math.round(performance.now() - started),
    options: { ...options, dir },
    ...shape,
  };
  fs.writeFileSync(path.join(dir, 'fixture.json'), `${JSON.stringify(description, null, 2)}\n`);

  let exiting = false;
  const exit = (code: number): void => {
    if (exiting) return;
    exiting = true;
    void api.stop().finally(() => {
      if (!options.dir) fs.rmSync(dir, { recursive: true, force: true });
      process.exit(code);
    });
    setTimeout(() => process.exit(code), 2000).unref();
  };
  process.on('SIGTERM', () => exit(0));
  process.on('SIGINT', () => exit(0));
  // The parent holds our stdin: when it goes away (even by crashing), so do we.
  process.stdin.on('end', () => exit(0));
  process.stdin.on('error', () => exit(0));
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify(description)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`k8s-api-fixture: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
