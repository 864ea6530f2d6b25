/**
 * The Helm chart (helm/flowtel) as a security review and an operator would
 * read it: lint, render with the values people use, and check the rendered
 * manifests (privileges, mounts, RBAC, probes, downward API). The agent
 * config the chart renders is checked by the agent's own validator
 * (`flowtel validate`), and broken values are refused by values.schema.json
 * with a message naming the field.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { configSchema, defaultConfig } from '../../src/config/config';
import { CLI, agentEnv } from '../support/agent-process';
import { cgroupRoot } from '../support/kernel';
import { tempDir } from '../support/tmp';
import { CHART, Container, Manifest, NAMESPACE, PodSpec, REPO, find, helm, podSpec, render, valuesFile } from './helm';
import { PROBE_GROUPS } from '../../src/probes/registry';

/** The capabilities values.yaml documents, one comment each; the agent gets exactly these. */
const DOCUMENTED_CAPABILITIES = ['BPF', 'PERFMON', 'NET_ADMIN', 'SYS_RESOURCE', 'SYS_PTRACE'];
/** Node paths the agent reads, all mounted read-only; no bpffs (nothing is pinned), no /proc (hostPID shows it). */
const READ_ONLY_HOST_PATHS = ['/sys/fs/cgroup', '/sys/kernel/btf'];
/** Agent config keys the chart sets itself or leaves to the agent's defaults, so its values do not offer them. */
const CHART_OWNED_KEYS = ['nodeName', 'cgroupRoot', 'bpfObjectDir', 'health.enabled', 'kubernetes.kubeconfig'];

const ALL_GROUPS = PROBE_GROUPS.map((g) => g.configKey);

/** The values people install with, by scenario. */
const SCENARIOS: Record<string, object> = {
  'default values': {},
  'with the collector gateway on': { collector: { enabled: true }, clusterName: 'prod-eu-1' },
  'with OTLP TLS and headers from Secrets': {
    config: { exporters: { otlp: { endpoint: 'https://otel.example.com:4317', exportIntervalMs: 15000 } } },
    otlpCredentials: {
      headersSecret: { name: 'otlp-headers', key: 'headers' },
      tls: { secretName: 'otlp-tls', caKey: 'ca.crt', clientCertificateKey: 'tls.crt', clientKeyKey: 'tls.key' },
    },
  },
  'with probe groups turned off': {
    config: {
      probes: { flows: { enabled: false }, drops: { enabled: false }, tcpRtt: { enabled: false }, tcpRetransmits: { granularity: 'flow' } },
    },
  },
  'with the ServiceMonitor, flow granularity and Kubernetes options': {
    serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
    config: {
      logLevel: 'debug',
      probes: Object.fromEntries(ALL_GROUPS.map((g) => [g, { granularity: 'flow' }])),
      exporters: { prometheus: { port: 19464 }, otlp: { endpoint: 'http://otel-collector.observability:4317', temporality: 'delta', headers: { 'x-tenant': 't1' } } },
      health: { port: 18099 },
      kubernetes: { enabled: true, podLabels: ['app.kubernetes.io/name', 'team'], resolvePeers: false },
    },
    hostNetwork: false,
    hostPaths: { cgroupRoot: '/sys/fs/cgroup/unified' },
    updateStrategy: { maxUnavailable: '20%' },
  },
};

function agentContainer(spec: PodSpec): Container {
  assert.equal(spec.containers.length, 1, 'one container in the agent pod');
  return spec.containers[0];
}

function agentConfig(manifests: Manifest[]): { text: string; parsed: Record<string, any> } {
  const cm = find(manifests, 'ConfigMap', 'flowtel');
  const text = (cm.data as Record<string, string>)['flowtel.yaml'];
  assert.ok(text, 'the ConfigMap holds flowtel.yaml');
  return { text, parsed: YAML.parse(text) as Record<string, any> };
}

/** `flowtel validate` on a config file, with this machine's cgroup root (the chart renders the node's mount path). */
function validateWithAgent(text: string) {
  const file = path.join(tempDir('chart-config'), 'flowtel.yaml');
  fs.writeFileSync(file, text);
  const r = spawnSync(process.execPath, [CLI, 'validate', '--config', file, '--cgroup-root', cgroupRoot()], {
    env: agentEnv(),
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function portNumber(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** Checks every scenario must pass. */
function checkAgentWorkload(manifests: Manifest[]): void {
  const ds = find(manifests, 'DaemonSet', 'flowtel');
  const spec = podSpec(ds);
  const agent = agentContainer(spec);
  const sc = agent.securityContext ?? {};

  // Not privileged; a fixed, documented capability set.
  assert.equal(sc.privileged, false, 'securityContext.privileged is false');
  assert.equal(sc.allowPrivilegeEscalation, false, 'allowPrivilegeEscalation is false');
  assert.equal(sc.readOnlyRootFilesystem, true, 'the root file system is read-only');
  assert.deepEqual(sc.capabilities?.drop, ['ALL'], 'every capability is dropped first');
  assert.deepEqual([...(sc.capabilities?.add ?? [])].sort(), [...DOCUMENTED_CAPABILITIES].sort(), 'exactly the documented capabilities');
  assert.ok(sc.seccompProfile && ['Unconfined', 'Localhost'].includes(sc.seccompProfile.type), `seccomp allows bpf(): ${JSON.stringify(sc.seccompProfile)}`);
  assert.ok(!JSON.stringify(spec).includes('"privileged":true'), 'nothing in the pod is privileged');

  // hostPID for /proc; hostPath mounts read-only; no bpffs, no /proc mount.
  assert.equal(spec.hostPID, true, 'hostPID');
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  const hostMounts = (agent.volumeMounts ?? []).filter((m) => volumes.get(m.name)?.hostPath);
  assert.ok(hostMounts.length > 0);
  for (const mount of hostMounts) {
    const hostPath = volumes.get(mount.name)?.hostPath?.path ?? '';
    assert.equal(mount.readOnly, true, `hostPath ${hostPath} is mounted read-only at ${mount.mountPath}`);
    assert.ok(!hostPath.startsWith('/sys/fs/bpf') && !hostPath.startsWith('/proc'), `no ${hostPath} mount`);
  }
  const hostPaths = (spec.volumes ?? []).filter((v) => v.hostPath).map((v) => v.hostPath?.path ?? '');
  assert.equal(hostPaths.length, READ_ONLY_HOST_PATHS.length, `host paths: ${hostPaths.join(', ')}`);
  for (const p of hostPaths) assert.ok(READ_ONLY_HOST_PATHS.some((r) => p === r || p.startsWith(`${r}/`)), `host path ${p} is one the agent reads`);
  // Every other mount that is not scratch space is read-only too (config, TLS Secret).
  for (const mount of agent.volumeMounts ?? []) {
    if (!volumes.get(mount.name)?.emptyDir) assert.equal(mount.readOnly, true, `${mount.mountPath} is read-only`);
  }

  // NODE_NAME from the downward API.
  const nodeName = agent.env?.find((e) => e.name === 'NODE_NAME');
  assert.deepEqual(nodeName?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName', 'NODE_NAME comes from spec.nodeName');

  // The agent reads the ConfigMap the chart renders.
  assert.deepEqual(agent.args, ['run', '--config', '/etc/flowtel/flowtel.yaml']);
  const configMount = agent.volumeMounts?.find((m) => m.mountPath === '/etc/flowtel');
  assert.equal(volumes.get(configMount?.name ?? '')?.configMap?.name, 'flowtel');

  // Probes on the configured health port.
  const { parsed } = agentConfig(manifests);
  assert.equal(parsed.health.enabled, true, 'the health endpoint is on');
  for (const [probe, expectedPath] of [
    ['livenessProbe', '/healthz'],
    ['readinessProbe', '/readyz'],
    ['startupProbe', '/healthz'],
  ] as const) {
    const get = agent[probe]?.httpGet;
    assert.equal(get?.path, expectedPath, `${probe} path`);
    assert.equal(portNumber(agent, get?.port), parsed.health.port, `${probe} points at health.port ${parsed.health.port}`);
  }
  if (parsed.exporters.prometheus.enabled) {
    assert.equal(portNumber(agent, 'metrics'), parsed.exporters.prometheus.port, 'the metrics port is exporters.prometheus.port');
  }

  // The config's cgroup root is where the node's cgroup fs is mounted.
  const cgroupMount = hostMounts.find((m) => volumes.get(m.name)?.hostPath?.path.startsWith('/sys/fs/cgroup'));
  assert.equal(parsed.cgroupRoot, cgroupMount?.mountPath, 'cgroupRoot is the cgroup mount');

  // Runs everywhere by default, with a priority class and a rolling update.
  assert.equal((ds.spec as any).updateStrategy.type, 'RollingUpdate');
  assert.ok((ds.spec as any).updateStrategy.rollingUpdate.maxUnavailable !== undefined);
  assert.ok(agent.image.includes(':'), `image has a tag: ${agent.image}`);

  // RBAC: read-only, exactly pods, services, nodes of the core group, bound to the agent's account.
  const role = find(manifests, 'ClusterRole');
  const rules = role.rules as Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }>;
  assert.equal(rules.length, 1, JSON.stringify(rules));
  assert.deepEqual(rules[0].apiGroups, ['']);
  assert.deepEqual([...rules[0].resources].sort(), ['nodes', 'pods', 'services']);
  assert.deepEqual([...rules[0].verbs].sort(), ['get', 'list', 'watch']);
  const binding = find(manifests, 'ClusterRoleBinding');
  assert.equal((binding.roleRef as { name: string }).name, role.metadata.name);
  const sa = find(manifests, 'ServiceAccount');
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: NAMESPACE }]);
  assert.equal(spec.serviceAccountName, sa.metadata.name);
}

describe('Helm chart helm/flowtel', function () {
  this.timeout(120_000);

  it('passes helm lint --strict with the default values and every scenario', () => {
    for (const [name, values] of Object.entries(SCENARIOS)) {
      const r = helm(['lint', '--strict', CHART, '--namespace', NAMESPACE, '--values', valuesFile(values)]);
      assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  for (const [name, values] of Object.entries(SCENARIOS)) {
    it(`renders ${name}: least privilege, read-only host paths, RBAC, NODE_NAME, probes, and a config the agent accepts`, () => {
      const manifests = render(values);
      checkAgentWorkload(manifests);
      const { text } = agentConfig(manifests);
      const r = validateWithAgent(text);
      assert.equal(r.code, 0, `flowtel validate refused the rendered config:\n${r.stderr}\n--- flowtel.yaml ---\n${text}`);
      assert.match(r.stdout, /configuration is valid/);
    });
  }

  it('default values: runs on every node, no OTLP, Prometheus on, a Grafana dashboard for the sidecar', () => {
    const manifests = render();
    const spec = podSpec(find(manifests, 'DaemonSet'));
    assert.deepEqual(spec.tolerations, [{ operator: 'Exists' }]);
    assert.equal(spec.priorityClassName, 'system-node-critical');
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.dnsPolicy, 'ClusterFirstWithHostNet', 'Service names resolve with hostNetwork');
    const { parsed } = agentConfig(manifests);
    assert.equal(parsed.exporters.otlp.endpoint, undefined);
    assert.equal(parsed.exporters.prometheus.enabled, true);
    assert.equal(parsed.exporters.console.enabled, false);
    const dashboard = find(manifests, 'ConfigMap', 'flowtel-dashboard');
    assert.equal(dashboard.metadata.labels?.grafana_dashboard, '1');
    JSON.parse((dashboard.data as Record<string, string>)['flowtel-network.json']);
    assert.equal(manifests.filter((m) => m.kind === 'ServiceMonitor' || m.kind === 'Deployment').length, 0, 'optional parts are off');
    const resources = agentContainer(spec) as unknown as { resources: { requests: Record<string, string>; limits: Record<string, string> } };
    assert.ok(resources.resources.requests.memory && resources.resources.limits.memory, 'memory request and limit');
  });

  it('collector on: a gateway Deployment and Service from otel-collector-config.yaml, and the agents send to it', () => {
    const manifests = render(SCENARIOS['with the collector gateway on']);
    const deployment = find(manifests, 'Deployment', 'flowtel-collector');
    const collector = podSpec(deployment).containers[0];
    assert.match(collector.image, /^otel\/opentelemetry-collector-contrib:\d+\.\d+\.\d+$/);
    const service = find(manifests, 'Service', 'flowtel-collector');
    const ports = (service.spec as { ports: Array<{ name: string; port: number }> }).ports;
    assert.ok(ports.some((p) => p.port === 4317), 'OTLP/gRPC port on the Service');
    const { parsed } = agentConfig(manifests);
    assert.equal(parsed.exporters.otlp.endpoint, `http://${service.metadata.name}.${NAMESPACE}.svc:4317`);
    const config = find(manifests, 'ConfigMap', 'flowtel-collector');
    const rootFile = fs.readFileSync(path.join(REPO, 'otel-collector-config.yaml'), 'utf8');
    assert.equal((config.data as Record<string, string>)['config.yaml'].trim(), rootFile.trim(), 'the gateway runs the repository file');
    const mountedAt = collector.volumeMounts?.find((m) => m.name === 'config')?.mountPath;
    assert.ok(collector.args?.includes(`--config=${mountedAt}/config.yaml`), JSON.stringify(collector.args));
    const env = new Map((collector.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.get('MIMIR_OTLP_ENDPOINT'), 'http://mimir-nginx.mimir.svc.cluster.local/otlp');
    const agentEnvVars = agentContainer(podSpec(find(manifests, 'DaemonSet'))).env ?? [];
    assert.equal(agentEnvVars.find((e) => e.name === 'OTEL_RESOURCE_ATTRIBUTES')?.value, 'k8s.cluster.name=prod-eu-1');
    assert.equal(collector.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(collector.securityContext?.privileged, false);
  });

  it('collector on and an explicit endpoint: refused, naming both values', () => {
    const r = helm(['template', 'flowtel', CHART, '--values', valuesFile({ collector: { enabled: true }, config: { exporters: { otlp: { endpoint: 'http://x:4317' } } } })]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /config\.exporters\.otlp\.endpoint .*collector\.enabled/);
  });

  it('OTLP TLS: CA, client certificate and key from a Secret mounted read-only; headers from a Secret', () => {
    const manifests = render(SCENARIOS['with OTLP TLS and headers from Secrets']);
    const spec = podSpec(find(manifests, 'DaemonSet'));
    const agent = agentContainer(spec);
    const tlsVolume = spec.volumes?.find((v) => v.secret?.secretName === 'otlp-tls');
    assert.ok(tlsVolume, 'the TLS Secret is a volume');
    const mount = agent.volumeMounts?.find((m) => m.name === tlsVolume.name);
    assert.equal(mount?.readOnly, true);
    const env = new Map((agent.env ?? []).map((e) => [e.name, e]));
    assert.equal(env.get('OTEL_EXPORTER_OTLP_CERTIFICATE')?.value, `${mount?.mountPath}/ca.crt`);
    assert.equal(env.get('OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE')?.value, `${mount?.mountPath}/tls.crt`);
    assert.equal(env.get('OTEL_EXPORTER_OTLP_CLIENT_KEY')?.value, `${mount?.mountPath}/tls.key`);
    assert.deepEqual(env.get('OTEL_EXPORTER_OTLP_HEADERS')?.valueFrom?.secretKeyRef, { name: 'otlp-headers', key: 'headers' });
    const { parsed, text } = agentConfig(manifests);
    assert.equal(parsed.exporters.otlp.endpoint, 'https://otel.example.com:4317');
    assert.ok(!text.includes('otlp-headers'), 'no secret material in the ConfigMap');
  });

  it('OTLP TLS with a plain http:// endpoint is refused', () => {
    const r = helm(['template', 'flowtel', CHART, '--values', valuesFile({ config: { exporters: { otlp: { endpoint: 'http://otel:4317' } } }, otlpCredentials: { tls: { secretName: 'otlp-tls' } } })]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /otlpCredentials\.tls\.secretName .*https:\/\//);
  });

  it("a grace period too short for the agent's shutdown budget is refused; one 5 s above it renders", () => {
    const tooShort = helm(['template', 'flowtel', CHART, '--values', valuesFile({ config: { shutdown: { timeoutMs: 10000 } }, terminationGracePeriodSeconds: 14 })]);
    assert.notEqual(tooShort.code, 0);
    assert.match(tooShort.stderr, /terminationGracePeriodSeconds \(14\) must be at least 5 s above config\.shutdown\.timeoutMs \(10000 ms\)/);
    const enough = helm(['template', 'flowtel', CHART, '--values', valuesFile({ config: { shutdown: { timeoutMs: 10000 } }, terminationGracePeriodSeconds: 15 })]);
    assert.equal(enough.code, 0, enough.stderr);
  });

  it('probe groups turned off are rendered disabled, the others keep their values', () => {
    const { parsed } = agentConfig(render(SCENARIOS['with probe groups turned off']));
    assert.equal(parsed.probes.flows.enabled, false);
    assert.equal(parsed.probes.drops.enabled, false);
    assert.equal(parsed.probes.tcpRtt.enabled, false);
    assert.equal(parsed.probes.tcpRetransmits.enabled, true);
    assert.equal(parsed.probes.tcpRetransmits.granularity, 'flow');
    assert.equal(parsed.probes.tcpConnections.granularity, 'pod');
  });

  it('ServiceMonitor: scrapes the metrics port of the agents through a headless Service', () => {
    const manifests = render(SCENARIOS['with the ServiceMonitor, flow granularity and Kubernetes options']);
    const monitor = find(manifests, 'ServiceMonitor');
    assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(monitor.metadata.labels?.release, 'kube-prometheus-stack');
    const endpoints = (monitor.spec as { endpoints: Array<{ port: string; path: string }> }).endpoints;
    assert.deepEqual(endpoints.map((e) => [e.port, e.path]), [['metrics', '/metrics']]);
    const service = find(manifests, 'Service', 'flowtel-metrics');
    const svcSpec = service.spec as { clusterIP: string; selector: Record<string, string>; ports: Array<{ name: string; port: number }> };
    assert.equal(svcSpec.clusterIP, 'None');
    assert.deepEqual(svcSpec.ports.map((p) => [p.name, p.port]), [['metrics', 19464]]);
    const ds = find(manifests, 'DaemonSet');
    const podLabels = (ds.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    for (const [k, v] of Object.entries(svcSpec.selector)) assert.equal(podLabels[k], v, `the Service selects the agents (${k})`);
    const spec = podSpec(ds);
    assert.equal(spec.hostNetwork, false);
    assert.equal(spec.dnsPolicy, 'ClusterFirst');
    assert.equal(spec.volumes?.find((v) => v.name === 'cgroup')?.hostPath?.path, '/sys/fs/cgroup/unified');
    const monitorOff = helm(['template', 'flowtel', CHART, '--values', valuesFile({ serviceMonitor: { enabled: true }, config: { exporters: { prometheus: { enabled: false } } } })]);
    assert.notEqual(monitorOff.code, 0, 'a ServiceMonitor without the Prometheus exporter is refused');
    assert.match(monitorOff.stderr, /serviceMonitor\.enabled needs config\.exporters\.prometheus\.enabled/);
  });

  describe('values.schema.json refuses broken values with a message naming the field', () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['granularity: packet', ['--set', 'config.probes.flows.granularity=packet'], /\/config\/probes\/flows\/granularity.*one of 'pod', 'flow'/],
      ['a port "abc"', ['--set', 'config.exporters.prometheus.port=abc'], /\/config\/exporters\/prometheus\/port.*want integer/],
      ['a port out of range', ['--set', 'config.health.port=70000'], /\/config\/health\/port.*65,?535/],
      ['a typo in a key', ['--set', 'config.exporters.prometheus.prot=9000'], /\/config\/exporters\/prometheus.*'prot' not allowed/],
      ['an unknown probe group', ['--set', 'config.probes.http.enabled=true'], /\/config\/probes.*'http' not allowed/],
      ['a log level', ['--set', 'config.logLevel=verbose'], /\/config\/logLevel.*one of/],
      ['a ring buffer that is not a power of two', ['--set', 'config.ringBuffer.sizeBytes=5000000'], /\/config\/ringBuffer\/sizeBytes/],
      ['an endpoint without a scheme', ['--set', 'config.exporters.otlp.endpoint=collector:4317'], /\/config\/exporters\/otlp\/endpoint/],
      ['a capability with the CAP_ prefix', ['--set', 'securityContext.capabilities={CAP_BPF,PERFMON}'], /\/securityContext\/capabilities/],
      ['a seccomp type', ['--set', 'securityContext.seccompProfile.type=Disabled'], /\/securityContext\/seccompProfile\/type/],
      ['a Localhost seccomp profile without its file', ['--set', 'securityContext.seccompProfile.type=Localhost'], /\/securityContext\/seccompProfile.*localhostProfile/],
      ['maxUnavailable 0', ['--set', 'updateStrategy.maxUnavailable=0'], /\/updateStrategy\/maxUnavailable/],
      ['an unknown top-level key', ['--set', 'tolerations2[0].operator=Exists'], /'tolerations2' not allowed/],
    ];
    for (const [name, args, message] of cases) {
      it(name, () => {
        const r = helm(['template', 'flowtel', CHART, ...args]);
        assert.notEqual(r.code, 0, `accepted ${args.join(' ')}`);
        assert.match(r.stderr, message);
      });
    }

    it('helm lint --strict fails too', () => {
      const r = helm(['lint', '--strict', CHART, '--set', 'config.probes.flows.granularity=packet']);
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /\/config\/probes\/flows\/granularity/);
    });
  });

  it('values.schema.json offers exactly the agent config keys (src/config/config.ts) the chart does not own', () => {
    const schema = JSON.parse(fs.readFileSync(path.join(CHART, 'values.schema.json'), 'utf8'));
    const offered: string[] = [];
    const walkSchema = (node: any, prefix: string): void => {
      for (const [key, child] of Object.entries<any>(node.properties ?? {})) {
        const dotted = prefix ? `${prefix}.${key}` : key;
        if (child.type === 'object' && child.properties) walkSchema(child, dotted);
        else offered.push(dotted);
      }
    };
    walkSchema(schema.properties.config, '');
    const agentKeys: string[] = [];
    type Node = { shape?: Record<string, Node> };
    const walkAgent = (spec: Node, prefix: string): void => {
      for (const [key, child] of Object.entries(spec.shape ?? {})) {
        const dotted = prefix ? `${prefix}.${key}` : key;
        if (child.shape) walkAgent(child, dotted);
        else agentKeys.push(dotted);
      }
    };
    walkAgent(configSchema as Node, '');
    const unknown = offered.filter((k) => !agentKeys.includes(k));
    assert.deepEqual(unknown, [], 'chart values the agent does not know would make it exit 2');
    const notOffered = agentKeys.filter((k) => !offered.includes(k));
    assert.deepEqual(
      notOffered.sort(),
      [...CHART_OWNED_KEYS].sort(),
      'a new agent config key: add it to helm/flowtel values.yaml and values.schema.json (or to CHART_OWNED_KEYS)',
    );
  });

  it("renders the agent's own default for every config value it does not choose on purpose", () => {
    // The chart's own choices, each for a reason of the DaemonSet (the rest must match, or the chart and
    // `npm start` would measure different things: the chart once counted every closed connection as a drop).
    const chosen: Record<string, string> = {
      cgroupRoot: 'where the chart mounts the node cgroup fs',
      'health.enabled': 'the kubelet probes need it',
      'exporters.prometheus.enabled': 'a DaemonSet serves /metrics even with OTLP (the agent alone: only without OTLP)',
      'exporters.console.enabled': 'stdout of a DaemonSet pod is for logs (the agent alone: console without OTLP)',
    };
    const { parsed } = agentConfig(render());
    const defaults = defaultConfig(REPO);
    const leaves = (node: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> => {
      if (node !== null && typeof node === 'object' && !Array.isArray(node) && Object.keys(node).length > 0) {
        for (const [k, v] of Object.entries(node)) leaves(v, prefix ? `${prefix}.${k}` : k, out);
      } else {
        out.set(prefix, node);
      }
      return out;
    };
    const rendered = leaves(parsed, '', new Map());
    const agent = leaves(defaults, '', new Map());
    const differing = [...rendered]
      .filter(([key]) => !(key in chosen))
      .filter(([key, value]) => JSON.stringify(value) !== JSON.stringify(agent.get(key)))
      .map(([key, value]) => `${key}: chart ${JSON.stringify(value)}, agent ${JSON.stringify(agent.get(key))}`);
    assert.deepEqual(differing, [], 'chart values that differ from the agent defaults (src/config/config.ts defaultConfig)');
    assert.deepEqual(rendered.get('probes.drops.denyReasons'), ['NOT_SPECIFIED', 'QUEUE_PURGE']);
  });

  it('values.yaml documents every capability it adds', () => {
    const text = fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8');
    const values = YAML.parse(text) as { securityContext: { capabilities: string[] } };
    assert.deepEqual(values.securityContext.capabilities, DOCUMENTED_CAPABILITIES);
    for (const cap of DOCUMENTED_CAPABILITIES) {
      assert.match(text, new RegExp(`^\\s*- ${cap}\\s+# \\S`, 'm'), `${cap} has a comment saying why`);
    }
    for (const hostPath of READ_ONLY_HOST_PATHS) assert.ok(text.includes(hostPath), `values.yaml names ${hostPath}`);
  });

  it('NOTES.txt tells what to check next', () => {
    const r = helm(['install', 'flowtel', CHART, '--namespace', NAMESPACE, '--dry-run=client']);
    assert.equal(r.code, 0, r.stderr);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    for (const expected of ['rollout status daemonset/flowtel', 'logs -l', 'doctor --config /etc/flowtel/flowtel.yaml', '/healthz', '/readyz', '/metrics']) {
      assert.ok(notes.includes(expected), `NOTES mention ${expected}:\n${notes}`);
    }
  });
});
