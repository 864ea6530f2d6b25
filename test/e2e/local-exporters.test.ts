/**
 * With no OTLP endpoint the agent falls back to the local defaults: a
 * Prometheus scrape endpoint and readable console lines. Both must show pod
 * A's live retransmit count, the same number the kernel counted.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { TestNode } from '../../src/testbed/test-node';
import { nstat } from '../../src/testbed/kernel-counters';
import { AgentProcess, waitFor } from '../support/agent-process';
import { cgroupRoot, requireKernel } from '../support/kernel';
import { groupOnThisKernel } from '../support/kernel-table';
import { PROBE_GROUPS } from '../../src/probes/registry';
import { dropPercent, iperf, waitForClosedConnections } from '../support/traffic';
import { tempDir } from '../support/tmp';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

const scrape = async (port: number) => (await get(port, '/metrics')).body;

describe('e2e: local default exporters (no OTLP endpoint)', function () {
  this.timeout(90_000);
  let node: TestNode | undefined;
  let agent: AgentProcess | undefined;
  const port = 19000 + (process.pid % 1000);
  let kernelRetransmits = 0;
  /*
   * The export has caught up once it is within the tolerance the tests assert.
   * Waiting for the kernel's exact count made the tests time out on a count one
   * short of nstat's TcpRetransSegs, which the 2% tolerance allows.
   */
  const caughtUp = (v: number) => v >= kernelRetransmits * 0.98;

  before(async function () {
    requireKernel(this);
    node = await TestNode.create({ cgroupRoot: cgroupRoot(), pods: [{ name: 'a' }, { name: 'b' }] });
    const config = path.join(tempDir('local'), 'flowtel.yaml');
    fs.writeFileSync(config, `exporters:\n  console:\n    intervalMs: 1000\n  prometheus:\n    host: 127.0.0.1\n    port: ${port}\n`);
    agent = AgentProcess.start(['--config', config, '--cgroup-root', cgroupRoot()]);
    await agent.running();
    await dropPercent(node, 'a', 'b', 2);
    const before = await nstat(node.pod('a').netns, ['TcpRetransSegs']);
    await iperf(node, 'a', 'b', 2);
    await waitForClosedConnections(node, 'a');
    kernelRetransmits = (await nstat(node.pod('a').netns, ['TcpRetransSegs'])).TcpRetransSegs - before.TcpRetransSegs;
    assert.ok(kernelRetransmits > 20, `only ${kernelRetransmits} retransmits`);
  });

  after(async function () {
    this.timeout(30_000);
    await agent?.stop();
    await node?.destroy();
  });

  it('serves the live count for Prometheus', async () => {
    const uid = node!.pod('a').uid;
    const value = await waitFor('the Prometheus series of pod A to reach the kernel count', async () => {
      const body = await scrape(port);
      const line = body.split('\n').find((l) => l.startsWith('flowtel_tcp_retransmits_total{') && l.includes(`k8s_pod_uid="${uid}"`));
      const v = line ? Number(line.split(' ').pop()) : undefined;
      return v !== undefined && caughtUp(v) ? v : undefined;
    });
    assert.ok(Math.abs(value - kernelRetransmits) <= kernelRetransmits * 0.02, `prometheus ${value} vs kernel ${kernelRetransmits}`);
  });

  it("answers the health endpoint: alive, and ready with each probe group's state, programs and reasons as docs/kernels.md has them", async () => {
    const live = await get(agent!.healthPort, '/healthz');
    assert.equal(live.status, 200);
    const ready = await get(agent!.healthPort, '/readyz');
    assert.equal(ready.status, 200, ready.body);
    type GroupReport = { state: string; reasons?: string[]; programs?: Array<{ hook: string; program: string }> };
    const report = JSON.parse(ready.body) as { status: string; groups: Record<string, GroupReport>; ringBuffer: { running: boolean } };
    assert.equal(report.status, 'ready');
    assert.deepEqual(
      Object.keys(report.groups),
      PROBE_GROUPS.map((g) => g.name),
    );
    for (const { name } of PROBE_GROUPS) {
      const expected = groupOnThisKernel(name);
      const group = report.groups[name];
      assert.equal(group.state, expected.state, name);
      assert.deepEqual(
        (group.programs ?? []).map((p) => p.program),
        expected.programs,
        name,
      );
      assert.equal((group.reasons ?? []).join('; '), expected.reason, name);
    }
    assert.equal(report.ringBuffer.running, true);
    assert.equal((await get(agent!.healthPort, '/nope')).status, 404);
  });

  it('prints the live count on the console', async () => {
    const uid = node!.pod('a').uid;
    const value = await waitFor('a console line for pod A', () => {
      const lines = agent!.stdout.split('\n').filter((l) => l.startsWith('flowtel.tcp.retransmits{') && l.includes(`k8s.pod.uid=${uid}`));
      const last = lines[lines.length - 1];
      const v = last ? Number(last.split(' ').slice(-2)[0]) : undefined;
      return v !== undefined && caughtUp(v) ? v : undefined;
    });
    assert.ok(Math.abs(value - kernelRetransmits) <= kernelRetransmits * 0.02, `console ${value} vs kernel ${kernelRetransmits}`);
    // Log records are printed on their own batch schedule, behind the metrics.
    const record = /flowtel\.tcp\.retransmit: TCP retransmission \d+\.\d+\.\d+\.\d+:\d+ -> \d+\.\d+\.\d+\.\d+:5201/;
    await waitFor('a retransmission log record on the console', () => (record.test(agent!.stdout) ? true : undefined));
  });
});
