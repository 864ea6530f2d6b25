/**
 * Kubernetes enrichment end to end: the real kernel test node, the test API
 * server speaking list/watch over TLS with Pod/ReplicaSet/Service/Node
 * objects that match the node's cgroups and veths, and the agent reading it
 * with @kubernetes/client-node.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mustRun } from '../../src/testbed/exec';
import { K8sApiServer } from '../../src/testbed/k8s-api-server';
import { publishNode, publishService, publishTestPod, type PublishedPod } from '../../src/testbed/k8s-fixtures';
import type { OtlpReceiver } from '../../src/testbed/otlp-receiver';
import { TestNode } from '../../src/testbed/test-node';
import { AgentProcess, freshExport, sleep, startAgentWithReceiver, waitFor } from '../support/agent-process';
import { cgroupRoot, requireKernel } from '../support/kernel';
import { tempDir } from '../support/tmp';
import { netClient, serveInPod } from '../support/traffic';

const NODE = 'test-node';
const NAMESPACE = 'shop';
const CLUSTER_IP = '10.96.0.50';

describe('e2e: Kubernetes enrichment', function () {
  this.timeout(240_000);
  let node: TestNode;
  let api: K8sApiServer;
  let agent: AgentProcess | undefined;
  let receiver: OtlpReceiver;
  let kubeconfig: string;
  const published = new Map<string, PublishedPod>();
  const podName = (pod: string) => String((published.get(pod)?.pod.metadata as { name: string }).name);

  before(async function () {
    requireKernel(this);
    node = await TestNode.create({ cgroupRoot: cgroupRoot(), pods: [{ name: 'a' }, { name: 'b' }] });
    api = await K8sApiServer.start({ bookmarkIntervalMs: 1000 });
    publishNode(api, NODE, '192.0.2.10');
    published.set('a', publishTestPod(api, node.pod('a'), { nodeName: NODE, namespace: NAMESPACE, deployment: 'checkout' }));
    published.set('b', publishTestPod(api, node.pod('b'), { nodeName: NODE, namespace: NAMESPACE, deployment: 'payments' }));
    publishService(api, {
      name: 'payments',
      namespace: NAMESPACE,
      clusterIP: CLUSTER_IP,
      selector: { 'app.kubernetes.io/name': 'payments' },
      port: 80,
      targetPort: 7050,
    });
    const dir = tempDir('k8s');
    kubeconfig = path.join(dir, 'kubeconfig');
    api.writeKubeconfig(kubeconfig);
    const config = path.join(dir, 'flowtel.yaml');
    fs.writeFileSync(
      config,
      `probes:\n  flows: { granularity: flow }\n  tcpConnections: { granularity: flow }\n` +
        `kubernetes:\n  deletedPodGracePeriodMs: 2000\n  podLabels: [app.kubernetes.io/name]\ncollection:\n  cgroupGracePeriodMs: 3000\n`,
    );
    ({ agent, receiver } = await startAgentWithReceiver(['--config', config, '--kubeconfig', kubeconfig, '--cgroup-root', cgroupRoot(), '--node-name', NODE]));
    await waitFor('the metadata cache to sync', () =>
      receiver.latestPoints('flowtel.agent.k8s.synced').length >= 4 && receiver.latestPoints('flowtel.agent.k8s.synced').every((p) => p.value === 1)
        ? true
        : undefined,
    );
  });

  after(async function () {
    this.timeout(30_000);
    await agent?.stop();
    await receiver?.stop();
    await api?.stop();
    await node?.destroy();
  });

  it('names the local pod, its deployment (through the ReplicaSet), namespace, container and node on series and log records', async () => {
    const a = node.pod('a');
    const b = node.pod('b');
    await netClient(node, 'a', ['connect', b.ip, 7049, 2]); // refused: a failure series and log records
    await freshExport(receiver);
    const [point] = receiver.latestPoints('flowtel.tcp.connection.failures', { 'k8s.pod.uid': a.uid });
    assert.ok(point, 'no failure series for pod A');
    const expected = {
      'k8s.namespace.name': NAMESPACE,
      'k8s.pod.name': podName('a'),
      'k8s.deployment.name': 'checkout',
      'k8s.node.name': NODE,
      'k8s.container.name': 'app',
      'k8s.pod.label.app.kubernetes.io/name': 'checkout',
      'service.name': 'checkout',
    };
    for (const [k, v] of Object.entries(expected)) assert.equal(point.attributes[k], v, k);
    // Log records travel on their own batch schedule: they may arrive after the metrics.
    const record = await waitFor('a failure log record for pod A', () => receiver.logsMatching('flowtel.tcp.connection.failure', { 'k8s.pod.uid': a.uid })[0]);
    for (const [k, v] of Object.entries(expected)) assert.equal(record.attributes[k], v, `log record ${k}`);
    assert.equal(record.attributes['peer.k8s.pod.name'], podName('b'));
    assert.equal(record.attributes['peer.k8s.deployment.name'], 'payments');
  });

  it('names the peer: the remote pod for a pod address, the service for a ClusterIP', async () => {
    const a = node.pod('a');
    const b = node.pod('b');
    // kube-proxy's job, done with nftables in pod A: the ClusterIP is DNATed to pod B (the CNI routes the service range).
    await mustRun('ip', ['netns', 'exec', a.netns, 'ip', 'route', 'add', '10.96.0.0/12', 'dev', 'eth0']);
    await mustRun('ip', ['netns', 'exec', a.netns, 'nft', '-f', '-'], {
      input: `table ip flowtel_nat {\n  chain output {\n    type nat hook output priority -100;\n    ip daddr ${CLUSTER_IP} tcp dport 80 dnat to ${b.ip}:7050\n  }\n}\n`,
    });
    await serveInPod(node, 'b', 7050, 5);
    assert.deepEqual(JSON.parse(await netClient(node, 'a', ['connect', CLUSTER_IP, 80, 3])), ['ok', 'ok', 'ok']);
    assert.deepEqual(JSON.parse(await netClient(node, 'a', ['connect', b.ip, 7050, 2])), ['ok', 'ok']);
    await freshExport(receiver);
    const viaService = receiver.latestPoints('flowtel.tcp.connection.opens', { 'k8s.pod.uid': a.uid, 'network.peer.address': CLUSTER_IP });
    assert.equal(
      viaService.reduce((s, p) => s + p.value, 0),
      3,
    );
    assert.equal(viaService[0].attributes['peer.k8s.service.name'], 'payments');
    assert.equal(viaService[0].attributes['peer.k8s.namespace.name'], NAMESPACE);
    assert.equal(viaService[0].attributes['flowtel.peer.kind'], 'service');
    assert.equal(viaService[0].attributes['server.port'], 80);
    const direct = receiver.latestPoints('k8s.pod.network.io', { 'k8s.pod.uid': a.uid, 'network.peer.address': b.ip, 'network.io.direction': 'transmit' });
    assert.ok(direct.length > 0, 'no flow series to pod B');
    assert.equal(direct[0].attributes['peer.k8s.pod.name'], podName('b'));
    assert.equal(direct[0].attributes['peer.k8s.deployment.name'], 'payments');
    assert.equal(direct[0].attributes['flowtel.peer.kind'], 'pod');
  });

  it('names a pod created after the agent started within 2 s of its watch event', async () => {
    const c = await node.createPod({ name: 'c' });
    const b = node.pod('b');
    await netClient(node, 'c', ['connect', b.ip, 7048, 2]); // before the API knows the pod: uid only
    await waitFor('an unnamed series for pod C', () => {
      const [p] = receiver.latestPoints('flowtel.tcp.connection.failures', { 'k8s.pod.uid': c.uid });
      return p && p.attributes['k8s.pod.name'] === undefined ? true : undefined;
    });
    const publishedAt = Date.now();
    published.set('c', publishTestPod(api, c, { nodeName: NODE, namespace: NAMESPACE, deployment: 'late' }));
    const namedAt = await waitFor('pod C named', () => {
      const exports = receiver.metricExports.filter((e) => e.receivedAt > publishedAt);
      const hit = exports.find((e) => e.points.some((p) => p.attributes['k8s.pod.uid'] === c.uid && p.attributes['k8s.pod.name'] === podName('c')));
      return hit?.receivedAt;
    });
    console.log(`      pod C named in an export ${namedAt - publishedAt} ms after its watch event (exports every 1000 ms)`);
    assert.ok(namedAt - publishedAt <= 3000, `${namedAt - publishedAt} ms`);
  });

  it("ends a deleted pod's series after the grace period", async () => {
    const c = node.pod('c');
    const deletedAt = Date.now();
    api.delete('Pod', NAMESPACE, podName('c'));
    await node.removePod('c');
    const goneAt = await waitFor(
      "pod C's series to stop",
      () => {
        const last = receiver.metricExports[receiver.metricExports.length - 1];
        return last.receivedAt > deletedAt && !last.points.some((p) => p.attributes['k8s.pod.uid'] === c.uid) ? last.receivedAt : undefined;
      },
      40_000,
    );
    console.log(`      pod C's series stopped ${goneAt - deletedAt} ms after deletion (cgroup grace 3000 ms)`);
    assert.ok(goneAt - deletedAt >= 3000, 'series must outlive the grace period');
    // Still resolvable while it mattered: its last export named it.
    const lastNamed = [...receiver.metricExports].reverse().find((e) => e.points.some((p) => p.attributes['k8s.pod.uid'] === c.uid));
    assert.ok(lastNamed?.points.some((p) => p.attributes['k8s.pod.uid'] === c.uid && p.attributes['k8s.pod.name'] === podName('c')));
  });

  it('keeps exporting through a 30 s API outage, re-syncs after 410, and names a pod created during it', async () => {
    const relistsBefore = receiver.latestTotal('flowtel.agent.k8s.relists');
    await api.stop();
    const outageStart = Date.now();
    await sleep(5000);
    const d = await node.createPod({ name: 'd' });
    published.set('d', publishTestPod(api, d, { nodeName: NODE, namespace: NAMESPACE, deployment: 'during-outage' }));
    await sleep(25_000);
    const exportsDuring = receiver.metricExports.filter((e) => e.receivedAt > outageStart).length;
    const syncedDuring = receiver.latestPoints('flowtel.agent.k8s.synced', { 'flowtel.k8s.resource': 'pods' })[0]?.value;
    api.compact(); // history gone: resuming the watch must get 410 and relist
    await api.start();
    console.log(`      ${exportsDuring} exports during the 30 s outage; pods synced metric during it: ${syncedDuring}`);
    assert.ok(exportsDuring >= 20, `only ${exportsDuring} exports during the outage`);
    assert.equal(syncedDuring, 0);
    await waitFor(
      're-sync',
      () =>
        receiver.latestTotal('flowtel.agent.k8s.relists') > relistsBefore && receiver.latestPoints('flowtel.agent.k8s.synced').every((p) => p.value === 1)
          ? true
          : undefined,
      30_000,
    );
    await netClient(node, 'd', ['connect', node.pod('b').ip, 7047, 1]);
    await freshExport(receiver);
    const [point] = receiver.latestPoints('flowtel.tcp.connection.failures', { 'k8s.pod.uid': d.uid });
    assert.equal(point?.attributes['k8s.pod.name'], podName('d'));
    assert.equal(point?.attributes['k8s.deployment.name'], 'during-outage');
  });

  it('after a short outage with history kept, resumes its watches and reports synced again without relisting', async () => {
    const relistsBefore = receiver.latestTotal('flowtel.agent.k8s.relists');
    await api.stop();
    await waitFor(
      'the outage to show',
      () => (receiver.latestPoints('flowtel.agent.k8s.synced', { 'flowtel.k8s.resource': 'pods' })[0]?.value === 0 ? true : undefined),
      15_000,
    );
    await api.start();
    await waitFor('synced again', () => (receiver.latestPoints('flowtel.agent.k8s.synced').every((p) => p.value === 1) ? true : undefined), 30_000);
    assert.equal(receiver.latestTotal('flowtel.agent.k8s.relists'), relistsBefore, 'resumed from the resourceVersion, no relist');
  });
});

describe('e2e: Kubernetes bad input', function () {
  this.timeout(60_000);
  let node: TestNode;
  let api: K8sApiServer;
  let receiver: OtlpReceiver | undefined;
  let agent: AgentProcess | undefined;

  before(async function () {
    requireKernel(this);
    node = await TestNode.create({ cgroupRoot: cgroupRoot(), pods: [{ name: 'a' }, { name: 'b' }] });
    api = await K8sApiServer.start();
    publishTestPod(api, node.pod('a'), { nodeName: NODE, namespace: NAMESPACE, deployment: 'checkout' });
  });

  afterEach(async () => {
    await agent?.stop();
    await receiver?.stop();
    agent = undefined;
    receiver = undefined;
  });

  after(async function () {
    this.timeout(30_000);
    await api?.stop();
    await node?.destroy();
  });

  it('an unreadable kubeconfig: one message, and the agent runs with cgroup attribution', async () => {
    ({ agent, receiver } = await startAgentWithReceiver(['--kubeconfig', '/nonexistent/kubeconfig', '--cgroup-root', cgroupRoot(), '--node-name', NODE]));
    await netClient(node, 'a', ['connect', node.pod('b').ip, 7046, 1]);
    await freshExport(receiver);
    // One message about Kubernetes; the others a kernel may add are about its probe groups (docs/kernels.md).
    const errors = agent.stderr.split('\n').filter((l) => (l.includes('level=error') || l.includes('level=warn')) && !isKernelWarning(l));
    assert.equal(errors.length, 1, agent.stderr);
    assert.match(errors[0], /level=error msg="kubernetes: cannot use kubeconfig \/nonexistent\/kubeconfig: .*attributing by cgroup only"/);
    assert.equal(receiver.latestTotal('flowtel.tcp.connection.failures', { 'k8s.pod.uid': node.pod('a').uid }), 1);
  });

  it('RBAC 403: names the resource and verb, and the agent keeps running', async () => {
    api.setForbidden('pods', 'list');
    const kubeconfig = path.join(tempDir('k8s403'), 'kubeconfig');
    api.writeKubeconfig(kubeconfig);
    ({ agent, receiver } = await startAgentWithReceiver(['--kubeconfig', kubeconfig, '--cgroup-root', cgroupRoot(), '--node-name', NODE]));
    // Both reflectors of pods (this node's, and the cluster's for peers) are refused; either may warn first.
    const nodePods =
      /missing RBAC permission: cannot list pods \(grant \\"list\\" on \\"pods\\" to the agent's service account\): list pods: HTTP 403: pods is forbidden/;
    const clusterPods =
      /missing RBAC permission: cannot list pods \(cluster\) \(grant \\"list\\" on \\"pods\\" to the agent's service account\): list pods \(cluster\): HTTP 403: pods is forbidden/;
    await waitFor('the RBAC message of both pod reflectors', () => (nodePods.test(agent!.stderr) && clusterPods.test(agent!.stderr) ? true : undefined));
    await netClient(node, 'a', ['connect', node.pod('b').ip, 7045, 1]);
    await freshExport(receiver);
    assert.equal(receiver.latestTotal('flowtel.tcp.connection.failures', { 'k8s.pod.uid': node.pod('a').uid }), 1);
    api.setForbidden('pods', 'list', false);
  });
});

/** A start-up warning about what this kernel does not carry: a probe group's state, or a drop reason it lacks. */
function isKernelWarning(line: string): boolean {
  return / group=[a-z-]+ state=(degraded|unsupported)/.test(line) || / field=probes\.drops\.(allow|deny)Reasons\[\d+\]/.test(line);
}
