/**
 * Flow granularity: the same kernel facts, split by peer. Every group runs at
 * flow granularity; pod A's bytes to B must land on the series whose peer is
 * B's address and server port, retransmits and refused connections likewise,
 * and nothing of that traffic may land on another peer.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { nstat } from '../../src/testbed/kernel-counters';
import { OtlpReceiver } from '../../src/testbed/otlp-receiver';
import { TestNode } from '../../src/testbed/test-node';
import { AgentProcess, freshExport, startAgentWithReceiver } from '../support/agent-process';
import { cgroupRoot, requireKernel } from '../support/kernel';
import { tempDir } from '../support/tmp';
import { IPERF_PORT, dropPercent, iperf, netClient, waitForClosedConnections } from '../support/traffic';

const GROUPS = ['tcpRetransmits', 'tcpResets', 'drops', 'tcpConnections', 'tcpRtt', 'flows'];

describe('e2e: flow granularity', function () {
  this.timeout(120_000);
  let node: TestNode;
  let receiver: OtlpReceiver;
  let agent: AgentProcess | undefined;

  before(async function () {
    requireKernel(this);
    node = await TestNode.create({ cgroupRoot: cgroupRoot(), pods: [{ name: 'a' }, { name: 'b' }] });
    const config = path.join(tempDir('flow'), 'flowtel.yaml');
    fs.writeFileSync(config, `probes:\n${GROUPS.map((g) => `  ${g}:\n    granularity: flow\n`).join('')}`);
    ({ agent, receiver } = await startAgentWithReceiver(['--config', config, '--cgroup-root', cgroupRoot()]));
  });

  after(async function () {
    this.timeout(30_000);
    await agent?.stop();
    await receiver?.stop();
    await node?.destroy();
  });

  it("puts A's bytes, retransmits and refused connects on the series of peer B and server port", async () => {
    const a = node.pod('a');
    const b = node.pod('b');
    await dropPercent(node, 'a', 'b', 2);
    const kernelBefore = await nstat(a.netns, ['TcpRetransSegs']);
    const { sentBytes } = await iperf(node, 'a', 'b', 2);
    await netClient(node, 'a', ['connect', b.ip, 7031, 3]);
    await waitForClosedConnections(node, 'a');
    const retransmitted = (await nstat(a.netns, ['TcpRetransSegs'])).TcpRetransSegs - kernelBefore.TcpRetransSegs;
    await freshExport(receiver);

    const toB = { 'k8s.pod.uid': a.uid, 'network.peer.address': b.ip, 'server.port': IPERF_PORT, 'network.transport': 'tcp' };
    const bytes = receiver.latestTotal('k8s.pod.network.io', { ...toB, 'network.io.direction': 'transmit' });
    const allBytes = receiver.latestTotal('k8s.pod.network.io', { 'k8s.pod.uid': a.uid, 'network.io.direction': 'transmit' });
    console.log(`      A -> B:5201 ${bytes} bytes (iperf3 ${sentBytes}); all of A ${allBytes}`);
    // Retransmitted segments are bytes on the wire too, so iperf3's payload is a lower bound here.
    assert.ok(bytes >= sentBytes && bytes <= sentBytes * 1.05, `${bytes} bytes to B vs iperf3 ${sentBytes}`);
    assert.ok(allBytes - bytes < sentBytes * 0.01, 'A sent almost nothing to other peers');
    assert.equal(receiver.latestTotal('flowtel.tcp.retransmits', toB), retransmitted);
    assert.equal(
      receiver.latestTotal('flowtel.tcp.connection.failures', { 'k8s.pod.uid': a.uid, 'network.peer.address': b.ip, 'server.port': 7031, 'error.type': 'refused' }),
      3,
    );
    const [point] = receiver.latestPoints('k8s.pod.network.io', { ...toB, 'network.io.direction': 'transmit' });
    assert.equal(point.attributes['network.type'], 'ipv4');
  });
});
