/**
 * Runs the kernel skipped as recursive, through BpfRuntime: what the agent
 * exports as flowtel.agent.events.lost{reason=program_skipped}. A program's
 * total must not go down when its group is unloaded (a policy turning the
 * group off), or the exported counter would look reset.
 */
import assert from 'node:assert/strict';
import { BpfRuntime } from '../../src/bpf/runtime';
import { requireKernel } from '../support/kernel';
import {
  buildRecursionFixture,
  RECURSING_PROGRAM,
  RECURSION_FIXTURE_OBJECT,
  thisProcessTgid,
  TRIGGER_PROGRAM,
  triggerRecursion,
  withPrintEventRestored,
} from './fixtures/recursion';

describe('recursion misses through the runtime (real kernel)', function () {
  this.timeout(30_000);
  let fixtureDir: string;

  before(async function () {
    requireKernel(this);
    fixtureDir = await buildRecursionFixture();
  });

  it("keeps a program's skipped runs after its group is unloaded, and adds those of the next load", async () => {
    const runtime = new BpfRuntime({ objectDir: fixtureDir, ringBufferBytes: 4096, maxQueuedBatches: 1 });
    const spec = {
      group: 'recursion-fixture',
      objectFile: RECURSION_FIXTURE_OBJECT,
      configure: (object: { setGlobal(name: string, value: Buffer): void }) => object.setGlobal('trigger_tgid', thisProcessTgid()),
      // The recursing program first: then the trigger's prints always find it attached.
      programs: [RECURSING_PROGRAM, TRIGGER_PROGRAM],
    };
    await withPrintEventRestored(() => {
      try {
        runtime.load(spec);
        triggerRecursion(3);
        assert.deepEqual(Object.fromEntries(runtime.readRecursionMisses()), { [RECURSING_PROGRAM]: 3, [TRIGGER_PROGRAM]: 0 });
        runtime.unload(spec.group);
        assert.deepEqual(Object.fromEntries(runtime.readRecursionMisses()), { [RECURSING_PROGRAM]: 3, [TRIGGER_PROGRAM]: 0 }, 'after unload');
        runtime.load(spec);
        triggerRecursion(2);
        assert.deepEqual(Object.fromEntries(runtime.readRecursionMisses()), { [RECURSING_PROGRAM]: 5, [TRIGGER_PROGRAM]: 0 }, 'loaded again');
      } finally {
        runtime.close();
      }
    });
  });
});
