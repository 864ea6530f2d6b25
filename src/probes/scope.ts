/**
 * What one probe group registered while it runs (series sources, event
 * handlers, timers), undone together when the group unloads, so that a group
 * can be loaded, unloaded and loaded again in one process without leaving
 * anything behind.
 */
export class GroupScope {
  private undos: Array<() => void> = [];
  private disposed = false;

  constructor(readonly group: string) {}

  /** Keeps `undo` for dispose(); after dispose it runs at once (a late registration must not outlive the group). */
  add(undo: () => void): void {
    if (this.disposed) {
      undo();
      return;
    }
    this.undos.push(undo);
  }

  /** Undoes every registration, newest first, each once; an undo that throws does not stop the others. */
  dispose(): void {
    this.disposed = true;
    const undos = this.undos.reverse();
    this.undos = [];
    const failures: unknown[] = [];
    for (const undo of undos) {
      try {
        undo();
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length) throw new AggregateError(failures, `probe group ${this.group}: ${failures.length} registration(s) failed to undo`);
  }
}
