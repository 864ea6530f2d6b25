/**
 * The kernel's tick rate (CONFIG_HZ), for BPF programs that compare jiffies
 * the kernel stored (such as tcp_sock.rcv_tstamp) against a window in
 * milliseconds. Read from the kernel's own build configuration (the file under
 * /boot that distributions ship, or /proc/config.gz) where it is readable; a
 * pod usually mounts neither, so else measured: the jiffies counter of
 * /proc/timer_list against the monotonic clock over a quarter of a second.
 */
import fs from 'node:fs';
import os from 'node:os';
import zlib from 'node:zlib';

export interface KernelHz {
  hz: number;
  /** Where the value came from, or undefined when it was assumed (no configuration readable). */
  source?: string;
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

/** `jiffies` from /proc/timer_list (root only), or undefined when unreadable. */
export function readTimerListJiffies(file = '/proc/timer_list'): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
  const match = /^jiffies: (\d+)$/m.exec(text);
  return match ? Number(match[1]) : undefined;
}

/**
 * The tick rate from the jiffies counter's progress over `waitMs`: the choice
 * of HZ_CHOICES within 10% of the measured rate, or undefined when none is
 * (or jiffies are unreadable).
 */
export async function measureHz(readJiffies: () => number | undefined = readTimerListJiffies, waitMs = 250): Promise<number | undefined> {
  const j0 = readJiffies();
  const t0 = process.hrtime.bigint();
  if (j0 === undefined) return undefined;
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  const j1 = readJiffies();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (j1 === undefined || seconds <= 0) return undefined;
  const rate = (j1 - j0) / seconds;
  return HZ_CHOICES.find((hz) => Math.abs(rate - hz) / hz <= 0.1);
}

/** The tick rate from the kernel's configuration, else measured, else assumed (HZ_MAX, no source). */
export async function detectKernelHz(
  candidates = [`/boot/config-${os.release()}`, '/proc/config.gz'],
  measure: () => Promise<number | undefined> = () => measureHz(),
): Promise<KernelHz> {
  const configured = kernelHz(candidates);
  if (configured.source !== undefined) return configured;
  const measured = await measure();
  return measured !== undefined ? { hz: measured, source: 'measured from the jiffies of /proc/timer_list' } : { hz: HZ_MAX };
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
