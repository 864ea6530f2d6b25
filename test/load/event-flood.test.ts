/**
 * A flood of events with the settings that let the most through: folding of
 * repeats off (events.aggregationWindowMs 0) and the per-CPU rate limit raised
 * 100 times. The agent must stay an agent: /healthz answers within 1 s
 * throughout (kubelet's liveness probe would otherwise restart it exactly when
 * its data matters), metric exports keep their interval within 1 s, resident
 * memory stays under the bound docs/performance.md states, and every event
 * the kernel counted is delivered or counted as lost with a reason.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { TestNode } from '../../src/testbed/test-node';
import { AgentProcess, startAgentWithReceiver, sleep, waitFor } from '../support/agent-process';
import { cgroupRoot, requireKernel } from '../support/kernel';
import { netClient } from '../support/traffic';
import { tempDir } from '../support/tmp';
import type { OtlpReceiver } from '../../src/testbed/otlp-receiver';
import { PROBE_GROUPS } from '../../src/probes/registry';

const FLOOD_SECONDS = 20;
const EXPORT_INTERVAL_MS = 1000;
/** Resident memory the agent stays under in this flood (docs/performance.md, "Event floods"). */
export const FLOOD_RSS_BOUND_MB = 200;

/** Milliseconds /healthz took to answer, or Infinity when it did not within 1 s. */
function healthLatency(port: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 1000 }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode === 200 ? performance.now() - started : Infinity));
    });
    request.on('timeout', () => {
      request.destroy();
      resolve(Infinity);
    });
    request.on('error', () => resolve(Infinity));
  });
}

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

describe('event flood with folding off and the rate limit raised 100x', function () {
  this.timeout(180_000);
  let node: TestNode;
  let agent: AgentProcess;
  let receiver: OtlpReceiver;

  before(async function () {
    requireKernel(this);
    node = await TestNode.create({ cgroupRoot: cgroupRoot(), pods: [{ name: 'a' }, { name: 'b' }] });
    const config = path.join(tempDir('flood'), 'flowtel.yaml');
    fs.writeFileSync(
      config,
      'events:\n  aggregationWindowMs: 0\nprobes:\n' +
        // Every group that sends events (has a per-CPU event rate).
        PROBE_GROUPS.filter((g) => Object.hasOwn(g.configSchema.shape, 'maxEventsPerSecondPerCpu'))
          .map((g) => `  ${g.configKey}:\n    maxEventsPerSecondPerCpu: 10000\n`)
          .join(''),
    );
    ({ agent, receiver } = await startAgentWithReceiver(['--cgroup-root', cgroupRoot(), '--node-name', 'test-node', '--config', config]));
  });

  after(async function () {
    this.timeout(60_000);
    await agent?.stop();
    await receiver?.stop();
    await node?.destroy();
  });

  it('answers /healthz within 1 s, exports on time, stays under the memory bound, and counts the excess', async () => {
    const pid = agent.child.pid as number;
    const latencies: number[] = [];
    let rssMax = 0;
    let flooding = true;
    const watch = (async () => {
      while (flooding) {
        latencies.push(await healthLatency(agent.healthPort));
        rssMax = Math.max(rssMax, rssMb(pid));
        await sleep(200);
      }
    })();
    const exportsBefore = receiver.metricExports.length;
    const floodStart = Date.now();
    // Datagrams to a closed port of B: each is a drop (NO_SOCKET) and an event.
    const sent = Number(await netClient(node, 'a', ['flood', node.pod('b').ip, 7030, FLOOD_SECONDS], 120_000));
    const floodEnd = Date.now();
    flooding = false;
    await watch;

    const exportTimes = receiver.metricExports
      .slice(exportsBefore)
      .map((e) => e.receivedAt)
      .filter((t) => t >= floodStart && t <= floodEnd + 1000);
    const gaps = exportTimes.slice(1).map((t, i) => t - exportTimes[i]);
    const worstGap = Math.max(...gaps);
    const worstHealth = Math.max(...latencies);
    const lost = (reason: string) => receiver.latestTotal('flowtel.agent.events.lost', { 'flowtel.loss.reason': reason });
    await waitFor('a final export after the flood', async () =>
      receiver.metricExports.at(-1)!.receivedAt > floodEnd + 2 * EXPORT_INTERVAL_MS ? true : undefined,
    );
    // Past the rate limit, events are suppressed in the kernel (counted there); past the queues, lost.
    const suppressed = receiver.latestTotal('flowtel.agent.events.suppressed');
    const excess = suppressed + lost('ring_buffer_full') + lost('queue_full');
    console.log(
      `      sent ${sent} datagrams in ${FLOOD_SECONDS} s; ${exportTimes.length} exports, worst gap ${worstGap} ms; ` +
        `/healthz ${latencies.length} probes, worst ${worstHealth.toFixed(0)} ms; RSS max ${rssMax.toFixed(0)} MB; ` +
        `events received ${receiver.latestTotal('flowtel.agent.events.received')}, suppressed ${suppressed}, lost: ` +
        `ring_buffer_full ${lost('ring_buffer_full')}, queue_full ${lost('queue_full')}, log_records_dropped ${lost('log_queue_full')}`,
    );
    // Every event handed to JS becomes one log record (folding is off): delivered, or counted as lost.
    await waitFor(
      'the log records to settle',
      async () => {
        const before = receiver.logRecords.length;
        await sleep(2500);
        return receiver.logRecords.length === before ? true : undefined;
      },
      60_000,
    );
    const received = receiver.latestTotal('flowtel.agent.events.received');
    const logLost = lost('log_queue_full') + lost('log_export_failed');
    console.log(
      `      events received ${received} = log records ${receiver.logRecords.length} + lost ${logLost} (${received - receiver.logRecords.length - logLost} unaccounted)`,
    );
    assert.ok(sent > 100_000, `the flood sent only ${sent} datagrams`);
    assert.ok(worstHealth < 1000, `/healthz took ${worstHealth} ms (Infinity: no answer within 1 s)`);
    assert.ok(exportTimes.length >= FLOOD_SECONDS - 2, `${exportTimes.length} exports during a ${FLOOD_SECONDS} s flood`);
    assert.ok(worstGap <= EXPORT_INTERVAL_MS + 1000, `exports ${worstGap} ms apart; the interval is ${EXPORT_INTERVAL_MS} ms`);
    assert.ok(rssMax < FLOOD_RSS_BOUND_MB, `RSS reached ${rssMax.toFixed(0)} MB`);
    assert.ok(logLost > 0, 'the log queue never filled: the test did not flood the log pipeline');
    assert.equal(receiver.logRecords.length + logLost, received, 'log records delivered plus lost must equal the events received');
    assert.ok(excess > 0, 'a flood past the rate limit lost nothing: the test did not flood');
  });
});
