/**
 * Publishes the test node's pods to the test API server as the objects a real
 * cluster would have: a Pod whose uid, IP, container id and node match the
 * kernel-side pod (cgroup, netns, veth), owned by a ReplicaSet of a
 * Deployment; the Node; Services with ClusterIPs. Used by the e2e tests and
 * by `flowtel demo`.
 */
import { createHash } from 'node:crypto';
import type { K8sApiServer, KubeObject } from './k8s-api-server';
import { makeNode, makePod, makeReplicaSet, makeService, ownerReference } from './k8s-api-server';
import type { TestPod } from './test-node';

export interface PublishedPod {
  pod: KubeObject;
  replicaSet: KubeObject;
  deployment: string;
  namespace: string;
}

/** pod-template-hash of a deployment (stable per name, 10 characters like Kubernetes'). */
function templateHash(deployment: string): string {
  return createHash('sha256').update(deployment).digest('hex').slice(0, 10);
}

export function publishTestPod(
  api: K8sApiServer,
  pod: TestPod,
  options: { nodeName: string; namespace: string; deployment: string; labels?: Record<string, string> },
): PublishedPod {
  const hash = templateHash(options.deployment);
  const rsName = `${options.deployment}-${hash}`;
  const existing = api.get('ReplicaSet', options.namespace, rsName);
  const replicaSet = existing ?? api.create(makeReplicaSet({ name: rsName, namespace: options.namespace, ownerDeployment: options.deployment }));
  const published = api.create(
    makePod({
      name: `${options.deployment}-${hash}-${pod.name}${pod.uid.slice(0, 4)}`,
      namespace: options.namespace,
      uid: pod.uid,
      nodeName: options.nodeName,
      podIP: pod.ip,
      labels: { 'app.kubernetes.io/name': options.deployment, ...options.labels, 'pod-template-hash': hash },
      ownerReferences: [{ ...ownerReference(replicaSet), controller: true }],
      containers: [{ name: 'app', containerID: `containerd://${pod.containerId}` }],
      qosClass: 'Burstable',
    }),
  );
  return { pod: published, replicaSet, deployment: options.deployment, namespace: options.namespace };
}

export function publishNode(api: K8sApiServer, name: string, internalIP: string): KubeObject {
  return api.create(makeNode({ name, internalIP }));
}

export function publishService(
  api: K8sApiServer,
  options: { name: string; namespace: string; clusterIP: string; selector: Record<string, string>; port: number; targetPort: number },
): KubeObject {
  return api.create(
    makeService({
      name: options.name,
      namespace: options.namespace,
      clusterIP: options.clusterIP,
      selector: options.selector,
      ports: [{ port: options.port, targetPort: options.targetPort, protocol: 'TCP' }],
    }),
  );
}
