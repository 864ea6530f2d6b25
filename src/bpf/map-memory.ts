/**
 * Kernel memory of BPF maps, as the kernel itself states it: the `memlock`
 * line of the map fd's /proc/self/fdinfo entry. From 6.4 that is the memory
 * the map uses (rows of a map that is not preallocated as they are created);
 * before, what it was charged at creation. Either way it is the figure that
 * counts against the pod's memory limit from 5.11 (memcg accounting).
 */
import fs from 'node:fs';

/** The `memlock` bytes of a map fd of this process, or undefined when the kernel does not say. */
export function mapMemlockBytes(fd: number, fdinfoDir = '/proc/self/fdinfo'): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`${fdinfoDir}/${fd}`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^memlock:\s+(\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** One map's kernel memory. */
export interface MapMemory {
  /** The probe group whose object made it; undefined for the maps every group shares (ring buffer, losses). */
  group: string | undefined;
  map: string;
  bytes: number;
  /** Whether it holds a value per possible CPU in each row, and how many rows of what value size. */
  perCpu: boolean;
  maxEntries: number;
  valueSize: number;
}

/**
 * The map's memory on a node with `cpus` possible CPUs, from what it takes on
 * this one (`cpusHere`): a per-CPU map holds each row's value, rounded up to 8
 * bytes, once per possible CPU; the rest does not depend on the CPUs. Exact
 * for preallocated maps, whose every row exists from the start.
 */
export function projectedBytes(m: MapMemory, cpus: number, cpusHere: number): number {
  if (!m.perCpu) return m.bytes;
  return m.bytes + (cpus - cpusHere) * m.maxEntries * Math.ceil(m.valueSize / 8) * 8;
}

/** "12.3 MiB" */
export function formatMiB(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
