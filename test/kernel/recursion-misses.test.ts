/**
 * Runs the kernel skipped as recursive, through BpfRuntime and the agent's
 * self-metrics: flowtel.agent.events.lost{reason=program_skipped}. A program's
 * total must not go down when its group is unloaded (a policy turning the
 * group off), or the exported counter would look reset.
 */
import assert from 'node:assert/strict';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { registerSelfMetrics } from '../../src/agent/self-metrics';
import { BpfRuntime } from '../../src/bpf/runtime';
import { requireKernel } from '../support/kernel';
import * as fixture from './fixtures/recursion';

// Before 6.1 the kernel runs nested raw-tracepoint programs instead of skipping them, and the fixture would
// deadlock a CPU (fixtures/recursion.ts): there the addon test checks that no skipped runs are read.
if (fixture.kernelSkipsNestedRuns())
  describe('recursion misses through the runtime (real kernel)', function () {
    this.timeout(30_000);
    let fixtureDir: string;

    before(async function () {
      requireKernel(this);
      fixtureDir = await fixture.buildRecursionFixture();
    });

    it("keeps a program's skipped runs after its group is unloaded, and adds those of the next load", async () => {
      const runtime = new BpfRuntime({ objectDir: fixtureDir, ringBufferBytes: 4096, maxQueuedBatches: 1 });
      const spec = fixture.RECURSION_FIXTURE;
      const { RECURSING_PROGRAM, TRIGGER_PROGRAM } = fixture;
      await fixture.withPrintEventRestored(() => {
        try {
          runtime.load(spec);
          fixture.triggerRecursion(3);
          assert.deepEqual(Object.fromEntries(runtime.readRecursionMisses()), { [RECURSING_PROGRAM]: 3, [TRIGGER_PROGRAM]: 0 });
          runtime.unload(spec.group);
          assert.deepEqual(Object.fromEntries(runtime.readRecursionMisses()), { [RECURSING_PROGRAM]: 3, [TRIGGER_PROGRAM]: 0 }, 'after unload');
          runtime.load(spec);
          fixture.triggerRecursion(2);
          assert.deepEqual(Object.fromEntries(runtime.readRecursionMisses()), { [RECURSING_PROGRAM]: 5, [TRIGGER_PROGRAM]: 0 }, 'loaded again');
        } finally {
          runtime.close();
        }
      });
    });

    it('exports them as flowtel.agent.events.lost{program_skipped}, one series per program', async () => {
      const runtime = new BpfRuntime({ objectDir: fixtureDir, ringBufferBytes: 4096, maxQueuedBatches: 1 });
      const reader = new CollectOnDemand();
      const meterProvider = new MeterProvider({ readers: [reader] });
      const pipeline = {
        lastCollectionSeconds: () => 0,
        skippedMetricExports: () => 0,
        logLosses: () => ({ queueFull: 0, exportFailed: 0 }),
        exportWatches: [],
      };
      const stop = registerSelfMetrics(meterProvider.getMeter('test'), runtime, pipeline, { folded: 0 });
      await fixture.withPrintEventRestored(async () => {
        try {
          runtime.load(fixture.RECURSION_FIXTURE);
          fixture.triggerRecursion(4);
          const { resourceMetrics } = await reader.collect();
          const lost = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'flowtel.agent.events.lost');
          const skipped = (lost?.dataPoints ?? []).filter((p) => p.attributes['flowtel.loss.reason'] === 'program_skipped');
          assert.deepEqual(Object.fromEntries(skipped.map((p) => [p.attributes['flowtel.bpf.program'], p.value])), {
            [fixture.RECURSING_PROGRAM]: 4,
            [fixture.TRIGGER_PROGRAM]: 0,
          });
        } finally {
          stop();
          runtime.close();
          await meterProvider.shutdown();
        }
      });
    });
  });

/** A reader that collects when the test asks, with no exporter behind it. */
class CollectOnDemand extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}
