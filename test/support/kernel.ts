/**
 * Kernel tests need root (BPF, namespaces, cgroups, nft). Outside CI a
 * developer without them gets a skip; in CI (CI=true) a missing capability
 * or tool fails the test, so a green CI always means the kernel was tested.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Context } from 'mocha';
import { effectiveCapabilities, missingBpfCapabilities } from '../../src/bpf/capabilities';
import { defaultCgroupRoot } from '../../src/config/config';
import { kernelFactsFrom, planHooks, unchosenPrograms, type HookSpec } from '../../src/bpf/hooks';
import { nativeAddon, packageRoot, type NativeBpfObject } from '../../src/bpf/native';
import { kernelCountsRecursionMisses } from '../../src/bpf/runtime';

const TOOLS = ['ip', 'nft', 'iperf3', 'nstat', 'tc', 'setpriv'];

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  missing.push(...missingBpfCapabilities(effectiveCapabilities()));
  const pathDirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  for (const tool of TOOLS) {
    if (!pathDirs.some((d) => fs.existsSync(`${d}/${tool}`))) missing.push(`the ${tool} command`);
  }
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) missing.push('kernel BTF (/sys/kernel/btf/vmlinux)');
  return missing;
}

/** Call from a before() hook of every suite that touches the kernel. */
export function requireKernel(context: Context): void {
  const missing = missingPrerequisites();
  if (missing.length === 0) return;
  const message = `kernel test prerequisites missing: ${missing.join(', ')}`;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true: kernel tests must run, not skip)`);
  context.skip();
}

export function cgroupRoot(): string {
  return process.env.FLOWTEL_TEST_CGROUP_ROOT ?? defaultCgroupRoot();
}

/**
 * Opens a probe object (under bpf/.output) for this kernel: of each hook's program variants only the one this
 * kernel can run stays to be loaded, as the agent chooses it. Returns the object and, by hook, the chosen
 * program's name.
 */
export function openForThisKernel(objectFile: string, hooks: readonly HookSpec[]): { object: NativeBpfObject; program: (hook: string) => string } {
  const addon = nativeAddon();
  const plan = planHooks(hooks, kernelFactsFrom(addon));
  if (!plan.supported) throw new Error(`${objectFile} cannot run on this kernel: ${plan.reason}`);
  const object = new addon.BpfObject(path.join(packageRoot(), 'bpf', '.output', objectFile));
  for (const program of unchosenPrograms(hooks, plan.programs)) object.setProgramAutoload(program, false);
  const program = (hook: string) => {
    const chosen = plan.programs.find((p) => p.hook.hook === hook && p.variant.program !== null);
    if (!chosen?.variant.program) throw new Error(`${objectFile} has no program at hook ${hook} on this kernel`);
    return chosen.variant.program;
  };
  return { object, program };
}

/** Whether this kernel counts the runs of a program it skipped (bpf_prog_info.recursion_misses, 5.12+). */
export function kernelCountsSkippedRuns(): boolean {
  return kernelCountsRecursionMisses(nativeAddon());
}
