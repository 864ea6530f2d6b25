/**
 * The Kubernetes API as the agent will use it: reachable with its
 * credentials, and RBAC allowing each verb it needs, asked of the API server
 * itself with a SelfSubjectAccessReview per verb and resource.
 */
import type { FlowtelConfig } from '../config/config';
import type { DoctorCheck } from './report';

/** What the agent reads (src/k8s/metadata.ts lists and watches): pods, and with resolvePeers services and nodes. */
export function neededAccess(config: FlowtelConfig): Array<{ resource: string; verbs: readonly string[] }> {
  const verbs = ['list', 'watch'];
  return config.kubernetes.resolvePeers
    ? [
        { resource: 'pods', verbs },
        { resource: 'services', verbs },
        { resource: 'nodes', verbs },
      ]
    : [{ resource: 'pods', verbs }];
}

export function kubernetesWanted(config: FlowtelConfig, env: NodeJS.ProcessEnv = process.env): boolean {
  const k = config.kubernetes;
  return k.enabled ?? Boolean(k.kubeconfig || env.KUBECONFIG || env.KUBERNETES_SERVICE_HOST);
}

export async function kubernetesChecks(config: FlowtelConfig): Promise<DoctorCheck[]> {
  if (!kubernetesWanted(config)) {
    return [
      { kind: 'kubernetes', name: 'kubernetes api', status: 'info', detail: 'off: no kubeconfig and not in a cluster; series carry cgroup attribution only' },
    ];
  }
  const without = 'pod, workload and peer names on series and log records (cgroup attribution only)';
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { KubeClient } = require('../k8s/kube-client') as typeof import('../k8s/kube-client');
  const k8s = require('@kubernetes/client-node') as typeof import('@kubernetes/client-node');
  /* eslint-enable @typescript-eslint/no-require-imports */
  let client: InstanceType<typeof KubeClient>;
  try {
    client = KubeClient.load(config.kubernetes.kubeconfig);
  } catch (err) {
    return [{ kind: 'kubernetes', name: 'kubernetes api', status: 'unavailable', detail: `no usable kubeconfig: ${firstLine(err)}`, impact: without }];
  }
  let version: string;
  try {
    const info = await client.config.makeApiClient(k8s.VersionApi).getCode();
    version = info.gitVersion;
  } catch (err) {
    return [{ kind: 'kubernetes', name: 'kubernetes api', status: 'unavailable', detail: `${client.server} unreachable: ${firstLine(err)}`, impact: without }];
  }
  const api = client.config.makeApiClient(k8s.AuthorizationV1Api);
  const denied: string[] = [];
  const errors: string[] = [];
  const needed = neededAccess(config);
  for (const { resource, verbs } of needed) {
    for (const verb of verbs) {
      try {
        const review = await api.createSelfSubjectAccessReview({
          body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb, resource, group: '' } } },
        });
        if (!review.status?.allowed) denied.push(`${verb} ${resource}`);
      } catch (err) {
        errors.push(`${verb} ${resource}: ${firstLine(err)}`);
      }
    }
  }
  const checks: DoctorCheck[] = [{ kind: 'kubernetes', name: 'kubernetes api', status: 'ok', detail: `${client.server} (${version})` }];
  if (errors.length) {
    checks.push({ kind: 'kubernetes', name: 'rbac', status: 'unavailable', detail: `cannot ask the API server: ${errors[0]}`, impact: without });
  } else if (denied.length) {
    checks.push({
      kind: 'kubernetes',
      name: 'rbac',
      status: 'unavailable',
      detail: `denied: ${denied.join(', ')} (the chart's ClusterRole grants them)`,
      impact: without,
    });
  } else {
    checks.push({ kind: 'kubernetes', name: 'rbac', status: 'ok', detail: `allowed: ${needed.map((a) => `${a.verbs.join('/')} ${a.resource}`).join(', ')}` });
  }
  return checks;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
