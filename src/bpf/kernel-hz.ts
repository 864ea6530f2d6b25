/**
 * The kernel's tick rate (CONFIG_HZ), for BPF programs that compare jiffies
 * the kernel stored (such as tcp_sock.rcv_tstamp) against a window in
 * milliseconds. Read from the kernel's own build configuration: the file
 * under /boot that distributions ship, or /proc/config.gz.
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
