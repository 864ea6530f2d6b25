/**
 * The agent stopping, as the OTLP transports see it. Once the stop begins an
 * export makes no more retries and no call outlives the stop's deadline: a
 * collector that refuses or never answers must not hold a SIGTERM past the
 * pod's grace period (kubelet then kills the agent with its last totals).
 */
export class ExportClosing {
  private stopBy: number | undefined;
  private readonly wakeups = new Set<() => void>();
  private readonly atDeadline = new Set<() => void>();

  /** True from the start of the stop. */
  get active(): boolean {
    return this.stopBy !== undefined;
  }

  /** Starts the stop: sleeping retries wake, and `onDeadline` callbacks run at `deadline` (ms since the epoch). */
  begin(deadline: number): void {
    if (this.stopBy !== undefined) return;
    this.stopBy = deadline;
    for (const wake of this.wakeups) wake();
    this.wakeups.clear();
    setTimeout(
      () => {
        for (const callback of this.atDeadline) callback();
      },
      Math.max(0, deadline - Date.now()),
    ).unref();
  }

  /** `deadline`, or the stop's if that comes first. */
  clamp(deadline: number): number {
    return this.stopBy === undefined ? deadline : Math.min(deadline, this.stopBy);
  }

  /** Waits `ms`, or less if the stop begins meanwhile. */
  sleep(ms: number): Promise<void> {
    if (this.active) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakeups.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakeups.add(wake);
    });
  }

  /** `callback` runs when the stop's deadline passes: what is still in flight then is cut off. */
  onDeadline(callback: () => void): void {
    this.atDeadline.add(callback);
  }
}
