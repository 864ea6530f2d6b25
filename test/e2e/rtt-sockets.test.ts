/**
 * tcp-rtt's sampling at the edges of a connection's life, with the agent running tcp-rtt alone: a connection
 * older than the agent is sampled, every connection is sampled at least once however short, and where the kernel
 * reads sockets (5.13+) no program stays on the per-segment hook. test/e2e/probe-groups.test.ts compares the
 * samples with ss.
 */
import assert from 'node:assert/strict';
import { mustRun } from '../../src/testbed/exec';
import type { OtlpReceiver } from '../../src/testbed/otlp-receiver';
import { TestNode } from '../../src/testbed/test-node';
import { ADOPTION_WINDOW_MS } from '../../src/probes/shared/socket-table';
import { AgentProcess, freshExport, startAgentWithReceiver } from '../support/agent-process';
import { cgroupRoot, requireKernel } from '../support/kernel';
import { groupOnThisKernel } from '../support/kernel-table';
import { echoServerInPod, iperf, netClient } from '../support/traffic';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('e2e: tcp-rtt from sockets', function () {
  this.timeout(180_000);
  let node: TestNode;
  let receiver: OtlpReceiver | undefined;
  let agent: AgentProcess | undefined;
  let older: Promise<unknown> | undefined;
  let agentStartedAt = 0;
  /** Whether this kernel reads sockets (the walk) rather than sampling segments (5.10). */
  const readsSockets = () => groupOnThisKernel('tcp-rtt').programs.includes('rtt_walk');

  before(async function () {
    requireKernel(this);
    node = await TestNode.create({ cgroupRoot: cgroupRoot(), pods: [{ name: 'a' }, { name: 'b' }] });
    // A connection older than the agent that keeps sending, past the adoption window.
    older = iperf(node, 'a', 'b', (ADOPTION_WINDOW_MS + 15_000) / 1000, ['-b', '2M']);
    older.catch(() => {}); // awaited (and its failure reported) by the first test
    await sleep(2000);
    agentStartedAt = Date.now();
    ({ agent, receiver } = await startAgentWithReceiver(['--cgroup-root', cgroupRoot(), '--node-name', 'test-node', '--probe-groups', 'tcp-rtt']));
  });

  after(async function () {
    this.timeout(60_000);
    await agent?.stop();
    await receiver?.stop();
    await older?.catch(() => {});
    await node?.destroy();
  });

  /** RTT samples exported so far for a pod, all its series together. */
  function samples(pod: string): number {
    return receiver!.latestPoints('flowtel.tcp.rtt', { 'k8s.pod.uid': node.pod(pod).uid }).reduce((sum, p) => sum + (p.count ?? 0), 0);
  }

  it('samples a connection that was open before the agent started, every interval while it sends', async () => {
    await sleep(Math.max(0, agentStartedAt + ADOPTION_WINDOW_MS + 1000 - Date.now()));
    await freshExport(receiver!);
    const afterWindow = samples('a');
    assert.ok(afterWindow > 0, 'no RTT sample of the connection that predates the agent');
    await sleep(5000);
    await freshExport(receiver!);
    const later = samples('a');
    console.log(`      pod A (older connection): ${afterWindow} samples by the end of the adoption window, ${later} 5 s later`);
    // One sample per second (sampleIntervalMs) of the data connection while it sends; the control connection is idle.
    assert.ok(later - afterWindow >= 3 && later - afterWindow <= 8, `${later - afterWindow} samples in 5 s, expected about 5`);
    await older;
  });

  it('samples every connection at least once, however short: at its close if no interval caught it', async () => {
    const server = await echoServerInPod(node, 'b', 7600);
    try {
      await freshExport(receiver!);
      const before = { a: samples('a'), b: samples('b') };
      const connections = Number((await netClient(node, 'a', ['churn', node.pod('b').ip, 7600, 2])).trim());
      await sleep(500);
      await freshExport(receiver!);
      const added = { a: samples('a') - before.a, b: samples('b') - before.b };
      console.log(`      ${connections} connections of a few ms: ${added.a} samples in pod A (clients), ${added.b} in pod B (servers)`);
      for (const pod of ['a', 'b'] as const) {
        // Once at close, or at its first received segment (5.10); a walk that catches one open adds one more.
        assert.ok(added[pod] >= connections && added[pod] <= 2 * connections, `pod ${pod}: ${added[pod]} samples for ${connections} connections`);
      }
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('leaves no program on the per-segment hook once the adoption window is over, where it reads sockets', async () => {
    const programs = JSON.parse(await mustRun('bpftool', ['-j', 'prog', 'show'])) as Array<{ id: number; name?: string }>;
    const links = JSON.parse(await mustRun('bpftool', ['-j', 'link', 'show'])) as Array<{ prog_id: number }>;
    // bpftool names a program by the kernel's 15 characters or, where BTF tells, in full: compared by prefix.
    const attached = links.map((l) => programs.find((p) => p.id === l.prog_id)?.name ?? '');
    const isAttached = (name: string) => attached.some((n) => n.startsWith(name.slice(0, 15)));
    if (readsSockets()) {
      for (const name of ['rtt_adopt', 'tcp_probe', 'tcp_probe__skc_cast']) assert.ok(!isAttached(name), `${name} is still attached`);
      assert.ok(isAttached('rtt_track'), `rtt_track is not attached: ${attached.join(', ')}`);
    } else {
      // 5.10: the segments are the samples (a degradation docs/kernels.md names).
      assert.ok(isAttached('tcp_probe__skc_cast'), `tcp_probe__skc_cast is not attached: ${attached.join(', ')}`);
    }
  });
});
