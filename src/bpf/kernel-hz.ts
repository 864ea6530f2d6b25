/**
 * The kernel's tick rate (CONFIG_HZ), for BPF programs that compare jiffies
 * the kernel stored (such as tcp_sock.rcv_tstamp) against a window in
 * milliseconds. Read from the kernel's own build configuration (the file under
 * /boot that distributions ship, or /proc/config.gz) where it is readable; a
 * pod usually mounts neither (and container runtimes mask /proc/timer_list),
 * so else measured: jiffies read by a BPF program (./kernel-clock) against the
 * monotonic clock over a quarter of a second.
 */
import fs from 'node:fs';
import os from 'node:os';
import zlib from 'node:zlib';

export interface KernelHz {
  hz: number;
  /** Where the value came from, or undefined when it was assumed. */
  source?: string;
  /** When assumed: why it could be neither read nor measured. */
  unknownBecause?: string;
}

/** The highest tick rate Linux offers: assuming it when unknown makes a jiffies window at most HZ_MAX/HZ times too long, never too short. */
export const HZ_MAX = 1000;

export function parseConfigHz(config: string): number | undefined {
  const match = /^CONFIG_HZ=(\d+)$/m.exec(config);
  const hz = match ? Number(match[1]) : NaN;
  return hz > 0 ? hz : undefined;
}

/** The rates Linux can be built with (CONFIG_HZ_100 ... CONFIG_HZ_1000). */
export const HZ_CHOICES = [100, 250, 300, 1000] as const;

/**
 * The tick rate from the jiffies counter's progress over `waitMs`: the choice
 * of HZ_CHOICES within 10% of the measured rate, or undefined when none is.
 * `readJiffies` gives the counter's low 32 bits (differences wrap).
 */
export async function measureHz(readJiffies: () => number, waitMs = 250): Promise<number | undefined> {
  const j0 = readJiffies();
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  const j1 = readJiffies();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (seconds <= 0) return undefined;
  const rate = ((j1 - j0) >>> 0) / seconds;
  return HZ_CHOICES.find((hz) => Math.abs(rate - hz) / hz <= 0.1);
}

/**
 * The tick rate from the kernel's configuration, else measured with `openReader` (a BPF program), else
 * assumed (HZ_MAX, no source, and why it could not be measured).
 */
export async function detectKernelHz(
  openReader: () => { read(): number; close(): void },
  candidates = [`/boot/config-${os.release()}`, '/proc/config.gz'],
): Promise<KernelHz> {
  const configured = kernelHz(candidates);
  if (configured.source !== undefined) return configured;
  let reader: { read(): number; close(): void };
  try {
    reader = openReader();
  } catch (err) {
    return { hz: HZ_MAX, unknownBecause: `the jiffies probe did not load: ${(err as Error).message.split('\n')[0]}` };
  }
  try {
    const measured = await measureHz(() => reader.read());
    return measured !== undefined
      ? { hz: measured, source: 'measured: jiffies read by BPF over 250 ms' }
      : { hz: HZ_MAX, unknownBecause: 'jiffies moved at no CONFIG_HZ rate' };
  } catch (err) {
    return { hz: HZ_MAX, unknownBecause: `the jiffies probe failed: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    reader.close();
  }
}

export function kernelHz(candidates = [`/boot/config-${os.release()}`, '/proc/config.gz']): KernelHz {
  for (const file of candidates) {
    let text: string;
    try {
      const raw = fs.readFileSync(file);
      text = (file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('latin1');
    } catch {
      continue; // absent or unreadable: try the next one
    }
    const hz = parseConfigHz(text);
    if (hz !== undefined) return { hz, source: file };
  }
  return { hz: HZ_MAX };
}

/** `ms` in jiffies at `hz`, rounded, at least one. */
export function msToJiffies(ms: number, hz: number): number {
  return Math.max(1, Math.round((ms * hz) / 1000));
}
