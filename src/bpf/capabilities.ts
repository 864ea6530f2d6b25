/**
 * Checks the effective capabilities before touching the kernel, so a missing
 * privilege is one clear message instead of an EPERM from deep in libbpf.
 */
import fs from 'node:fs';

export const CAP_NET_ADMIN = 12;
export const CAP_SYS_PTRACE = 19;
export const CAP_SYS_ADMIN = 21;
export const CAP_SYS_RESOURCE = 24;
export const CAP_PERFMON = 38;
export const CAP_BPF = 39;

const NAMES: Record<number, string> = {
  [CAP_NET_ADMIN]: 'CAP_NET_ADMIN',
  [CAP_SYS_PTRACE]: 'CAP_SYS_PTRACE',
  [CAP_SYS_ADMIN]: 'CAP_SYS_ADMIN',
  [CAP_SYS_RESOURCE]: 'CAP_SYS_RESOURCE',
  [CAP_PERFMON]: 'CAP_PERFMON',
  [CAP_BPF]: 'CAP_BPF',
};

export function capabilityName(cap: number): string {
  return NAMES[cap] ?? `capability ${cap}`;
}

export function effectiveCapabilities(statusText = fs.readFileSync('/proc/self/status', 'utf8')): bigint {
  const line = statusText.split('\n').find((l) => l.startsWith('CapEff:'));
  if (!line) throw new Error('/proc/self/status has no CapEff line');
  return BigInt(`0x${line.slice('CapEff:'.length).trim()}`);
}

export function hasCapability(caps: bigint, cap: number): boolean {
  return has(caps, cap);
}

function has(caps: bigint, cap: number): boolean {
  return (caps & (1n << BigInt(cap))) !== 0n;
}

/** Names of the capabilities missing for loading tracing BPF programs ([] when fine). */
export function missingBpfCapabilities(caps: bigint): string[] {
  // CAP_SYS_ADMIN implies both on kernels before 5.8 and still grants them today.
  if (has(caps, CAP_SYS_ADMIN)) return [];
  return [CAP_BPF, CAP_PERFMON].filter((cap) => !has(caps, cap)).map((cap) => NAMES[cap]);
}
