/**
 * The tick rate measured with jiffies read by BPF (what the agent does where
 * the kernel's build config is not readable, as in a pod) equals the
 * CONFIG_HZ the kernel was built with, read from that build config: the host's
 * own, or the one of the VM's kernel package (FLOWTEL_VM_KERNEL_CONFIG).
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { openJiffiesReader } from '../../src/bpf/kernel-clock';
import { detectKernelHz, kernelHz, measureHz } from '../../src/bpf/kernel-hz';
import { packageRoot } from '../../src/bpf/native';
import path from 'node:path';
import { requireKernel } from '../support/kernel';

const OBJECTS = path.join(packageRoot(), 'bpf', '.output');

describe('kernel tick rate measured by BPF (real kernel)', function () {
  this.timeout(30_000);

  before(function () {
    requireKernel(this);
  });

  it("equals the CONFIG_HZ of the kernel's own build config", async () => {
    const config = process.env.FLOWTEL_VM_KERNEL_CONFIG ?? '';
    const built = kernelHz([config, `/boot/config-${os.release()}`, '/proc/config.gz'].filter(Boolean));
    assert.ok(built.source, 'no build config of this kernel to compare with');
    const reader = openJiffiesReader(OBJECTS);
    try {
      const measured = await measureHz(() => reader.read());
      console.log(`      measured ${measured} Hz; ${built.source} says ${built.hz}`);
      assert.equal(measured, built.hz);
    } finally {
      reader.close();
    }
  });

  it('is measured when no build config is readable, and says so', async () => {
    const hz = await detectKernelHz(() => openJiffiesReader(OBJECTS), ['/nonexistent/config']);
    assert.match(hz.source ?? '', /^measured: jiffies read by BPF/);
    assert.equal(hz.unknownBecause, undefined);
  });

  it('is assumed, with the reason, when the probe cannot load', async () => {
    const hz = await detectKernelHz(() => openJiffiesReader('/nonexistent'), ['/nonexistent/config']);
    assert.equal(hz.source, undefined);
    assert.equal(hz.hz, 1000);
    assert.match(hz.unknownBecause ?? '', /^the jiffies probe did not load: \/nonexistent\/kernel_clock\.bpf\.o: open: No such file or directory/);
  });
});
