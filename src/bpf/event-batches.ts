/**
 * Works through the ring buffer's batches in slices of bounded time, so that
 * a flood of events cannot hold the event loop: between slices, timers (metric
 * export), sockets (/healthz, Prometheus) and the rest run. A batch stays
 * counted against the native queue bounds until its last record is handled,
 * so while JS is behind the native thread leaves records in the kernel ring,
 * where overflow is counted, instead of queueing them in memory.
 */
import { performance } from 'node:perf_hooks';

/** Handles one framed record; returns nothing, throws nothing (the caller counts failures). */
export type RecordHandler = (batch: Buffer, start: number, size: number) => void;

/** Records are framed as [u32 length][payload][pad to 8 bytes] (ring_buffer_consumer.cc). */
const FRAME_HEADER = 4;
/** Reading the clock for every record would cost more than many handlers. */
const RECORDS_PER_CLOCK_CHECK = 32;

interface PendingBatch {
  batch: Buffer;
  records: number;
  next: number;
  offset: number;
}

export class EventBatches {
  private readonly pending: PendingBatch[] = [];
  private scheduled: NodeJS.Immediate | undefined;

  constructor(
    private readonly handle: RecordHandler,
    /** Called once per batch, when its last record is handled. */
    private readonly done: (bytes: number) => void,
    private readonly sliceMs: number,
  ) {}

  /** From the native thread's hand-over: queued, worked on in the next slices. */
  push(batch: Buffer, records: number): void {
    this.pending.push({ batch, records, next: 0, offset: 0 });
    this.schedule();
  }

  /** Handles everything queued now, without yielding: at stop, before the final export. */
  drain(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.work(Infinity);
  }

  private schedule(): void {
    // setImmediate runs after the poll phase: sockets and timers due get their turn first.
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined;
      this.work(this.sliceMs);
      if (this.pending.length > 0) this.schedule();
    });
  }

  private work(budgetMs: number): void {
    const deadline = performance.now() + budgetMs;
    let sinceCheck = 0;
    while (this.pending.length > 0) {
      const item = this.pending[0];
      while (item.next < item.records && item.offset + FRAME_HEADER <= item.batch.length) {
        const size = item.batch.readUInt32LE(item.offset);
        this.handle(item.batch, item.offset + FRAME_HEADER, size);
        item.offset += (FRAME_HEADER + size + 7) & ~7;
        item.next++;
        if (++sinceCheck === RECORDS_PER_CLOCK_CHECK) {
          sinceCheck = 0;
          if (performance.now() >= deadline) break;
        }
      }
      if (item.next >= item.records || item.offset + FRAME_HEADER > item.batch.length) {
        this.pending.shift();
        this.done(item.batch.length);
      }
      if (performance.now() >= deadline) break;
    }
  }
}
