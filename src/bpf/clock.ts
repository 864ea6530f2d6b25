/**
 * Kernel event timestamps are bpf_ktime_get_ns() (CLOCK_MONOTONIC), the same
 * clock as process.hrtime; one offset taken at start maps them to wall time.
 */
import type { HrTime } from '@opentelemetry/api';

export class KernelClock {
  private readonly offsetNs: bigint;

  constructor() {
    this.offsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  }

  toHrTime(monotonicNs: bigint): HrTime {
    const wall = monotonicNs + this.offsetNs;
    return [Number(wall / 1_000_000_000n), Number(wall % 1_000_000_000n)];
  }
}
