/** The `const volatile` globals every probe object shares (bpf/flowtel_common.bpf.h). */
import fs from 'node:fs';
import { u16, u64, u8 } from '../../bpf/le-bytes';
import type { ObjectNames, OpenedObject } from '../../bpf/object-names';
import type { Granularity } from '../config';
import { EphemeralPorts } from '../../bpf/tuple';

/** net.ipv4.ip_local_port_range, which tells client ports from server ports. */
export function ephemeralPortRange(file = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] {
  try {
    const [low, high] = fs.readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    if (low > 0 && high >= low) return [low, high];
  } catch {
    // fall through to the kernel default
  }
  return [32768, 60999];
}

export function ephemeralPorts(): EphemeralPorts {
  const [low, high] = ephemeralPortRange();
  return new EphemeralPorts(low, high);
}

/** The globals bpf/flowtel_common.bpf.h gives every object. */
type CommonGlobal = 'flowtel_flow_granularity' | 'flowtel_ephemeral_low' | 'flowtel_ephemeral_high' | 'flowtel_events_per_cpu_per_sec';

/** `object` must define every common global (never: tsc refuses an object that lacks one). */
export function setCommonGlobals<N extends ObjectNames>(
  object: CommonGlobal extends N['globals'] ? OpenedObject<N> : never,
  options: { granularity: Granularity; maxEventsPerSecondPerCpu?: number },
): void {
  const [low, high] = ephemeralPortRange();
  object.setGlobal('flowtel_flow_granularity', u8(options.granularity === 'flow' ? 1 : 0));
  object.setGlobal('flowtel_ephemeral_low', u16(low));
  object.setGlobal('flowtel_ephemeral_high', u16(high));
  object.setGlobal('flowtel_events_per_cpu_per_sec', u64(options.maxEventsPerSecondPerCpu ?? 0));
}
