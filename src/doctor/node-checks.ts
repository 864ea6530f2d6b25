/**
 * What the agent needs of the node before any probe group: the kernel's BTF,
 * the capabilities, the cgroup v2 root, the tick rate, and (for information)
 * tracefs. Each check reads the thing itself; none trusts a feature probe.
 */
import fs from 'node:fs';
import os from 'node:os';
import { HZ_MAX, type KernelHz } from '../bpf/kernel-hz';
import {
  CAP_NET_ADMIN,
  CAP_SYS_ADMIN,
  CAP_SYS_PTRACE,
  CAP_SYS_RESOURCE,
  effectiveCapabilities,
  hasCapability,
  missingBpfCapabilities,
} from '../bpf/capabilities';
import { isCgroup2, type FlowtelConfig } from '../config/config';
import type { DoctorCheck } from './report';

const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

export function kernelCheck(btfFile = VMLINUX_BTF): DoctorCheck {
  try {
    fs.accessSync(btfFile, fs.constants.R_OK);
    return { kind: 'node', name: 'kernel', status: 'ok', detail: `${os.release()}, BTF at ${btfFile}` };
  } catch (err) {
    return {
      kind: 'node',
      name: 'kernel',
      status: 'fatal',
      detail: `${os.release()} without readable BTF (${btfFile}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      impact: 'every probe group: the programs are CO-RE and need the kernel BTF (CONFIG_DEBUG_INFO_BTF=y)',
    };
  }
}

/** Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK (later ones to the memory cgroup). */
function chargesMemlock(release: string): boolean {
  const [major, minor] = release.split(/[.-]/).map(Number);
  return major < 5 || (major === 5 && minor < 11);
}

/** The capabilities the agent uses, and what each missing one costs on this kernel. */
export function capabilitiesCheck(caps: bigint = effectiveCapabilities(), release = os.release()): DoctorCheck {
  const missingBpf = missingBpfCapabilities(caps);
  if (missingBpf.length) {
    return {
      kind: 'node',
      name: 'capabilities',
      status: 'fatal',
      detail: `missing ${missingBpf.join(' and ')}`,
      impact: 'every probe group: loading and attaching BPF programs needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)',
    };
  }
  const admin = hasCapability(caps, CAP_SYS_ADMIN);
  const optional: Array<[number, string, string]> = [
    [CAP_NET_ADMIN, 'CAP_NET_ADMIN', "the flows group's per-packet counting (cgroup_skb at the cgroup root: before Linux 5.13, or with nonTcpPackets)"],
    [CAP_SYS_PTRACE, 'CAP_SYS_PTRACE', "attribution of socket-less events to pods (other processes' /proc/<pid>/ns/net) and connections open before start"],
  ];
  if (chargesMemlock(release))
    optional.push([CAP_SYS_RESOURCE, 'CAP_SYS_RESOURCE', 'BPF maps beyond the default locked-memory limit (this kernel counts them against it)']);
  const missing = optional.filter(([cap]) => !admin && !hasCapability(caps, cap));
  const present = ['CAP_BPF', 'CAP_PERFMON', ...optional.filter(([cap]) => admin || hasCapability(caps, cap)).map(([, name]) => name)];
  if (admin) present.push('CAP_SYS_ADMIN');
  if (missing.length === 0) return { kind: 'node', name: 'capabilities', status: 'ok', detail: present.join(', ') };
  return {
    kind: 'node',
    name: 'capabilities',
    status: 'degraded',
    detail: `missing ${missing.map(([, name]) => name).join(', ')}`,
    impact: missing.map(([, , lost]) => lost).join('; '),
  };
}

export function cgroupRootCheck(config: FlowtelConfig): DoctorCheck {
  if (isCgroup2(config.cgroupRoot)) return { kind: 'node', name: 'cgroup v2 root', status: 'ok', detail: config.cgroupRoot };
  return {
    kind: 'node',
    name: 'cgroup v2 root',
    status: 'unavailable',
    detail: `${config.cgroupRoot} is not a cgroup v2 mount (set cgroupRoot; hybrid hosts have it at /sys/fs/cgroup/unified)`,
    impact: 'pods and containers told apart by cgroup, and the flows group',
  };
}

/** `samplers`: the groups that sample by the tick, named in the impact. */
export function tickRateCheck(hz: KernelHz, samplers: readonly string[]): DoctorCheck {
  if (hz.source !== undefined) return { kind: 'node', name: 'CONFIG_HZ', status: 'ok', detail: `${hz.hz} (${hz.source})` };
  return {
    kind: 'node',
    name: 'CONFIG_HZ',
    status: 'degraded',
    detail: `unknown (no /boot/config-${os.release()} or /proc/config.gz, and ${hz.unknownBecause ?? 'not measured'}): assuming ${HZ_MAX}`,
    impact: `${samplers.join(', ')} may sample a socket up to ${HZ_MAX / 100} times less often than sampleIntervalMs says`,
  };
}

/** tracefs is not needed (tp_btf programs attach without it); it is reported because people look for it. */
export function tracefsCheck(mountinfo = readMountinfo()): DoctorCheck {
  const mount = mountinfo
    .split('\n')
    .map((line) => line.split(' - '))
    .find(([, after]) => after?.startsWith('tracefs '));
  const point = mount?.[0].split(' ')[4];
  return {
    kind: 'node',
    name: 'tracefs',
    status: 'info',
    detail: point ? `mounted at ${point} (not needed: tp_btf programs attach without it)` : 'not mounted (not needed: tp_btf programs attach without it)',
  };
}

function readMountinfo(): string {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}
