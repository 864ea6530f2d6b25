/**
 * The kernel's jiffies, read by a BPF program run on demand
 * (bpf/kernel_clock.bpf.o, BPF_PROG_TEST_RUN): where neither the kernel's
 * build config nor /proc/timer_list is readable, as in a pod, this is how the
 * tick rate is measured.
 */
import path from 'node:path';
import { nativeAddon, type NativeAddon } from './native';

const OBJECT = 'kernel_clock.bpf.o';
const PROGRAM = 'read_jiffies';

export interface JiffiesReader {
  /** The low 32 bits of jiffies now. */
  read(): number;
  close(): void;
}

export function openJiffiesReader(objectDir: string, addon: NativeAddon = nativeAddon()): JiffiesReader {
  const object = new addon.BpfObject(path.join(objectDir, OBJECT));
  try {
    object.load();
  } catch (err) {
    object.close();
    throw err;
  }
  return {
    read: () => object.programTestRun(PROGRAM) >>> 0,
    close: () => object.close(),
  };
}
