/**
 * The queue between network events and a log exporter: bounded, batched,
 * one export at a time, and every record it cannot deliver counted by why.
 * The SDK's BatchLogRecordProcessor drops the same records, but counts them
 * only in its own metric; here they join flowtel.agent.events.lost with the
 * ring buffer's and the queues' losses, and the first of each kind is logged.
 */
import type { Context } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { LogRecordExporter, LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import type { ExportWatch } from './export-watch';

export interface LogQueueOptions {
  /** Records waiting for export; beyond it new records are dropped (counted as queueFull). */
  maxQueueSize: number;
  /** Records per export call. */
  maxBatchSize: number;
  /** How long a record may wait for a batch to fill. */
  delayMs: number;
  /** An export not answered by then counts as failed. */
  exportTimeoutMs: number;
  /** Told once per kind of loss, when it first happens. */
  onFirstLoss?: (kind: keyof LogLosses, detail: string) => void;
  /** Told how each export ended (../export-watch), which logs failures and recoveries. */
  watch?: ExportWatch;
}

export interface LogLosses {
  /** Dropped at emit: the queue was full (an export too slow or failing for longer than the queue holds). */
  queueFull: number;
  /** In a batch the exporter did not deliver: refused, unreachable or timed out. */
  exportFailed: number;
}

export class LogQueue implements LogRecordProcessor {
  private queue: ReadWriteLogRecord[] = [];
  private exporting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly lossCounts: LogLosses = { queueFull: 0, exportFailed: 0 };

  constructor(
    private readonly exporter: LogRecordExporter,
    private readonly options: LogQueueOptions,
  ) {}

  get losses(): Readonly<LogLosses> {
    return this.lossCounts;
  }

  /** Records waiting for export. */
  get pending(): number {
    return this.queue.length;
  }

  onEmit(record: ReadWriteLogRecord, _context?: Context): void {
    if (this.closed) return;
    if (this.queue.length >= this.options.maxQueueSize) {
      this.lose('queueFull', 1, `the log queue is full (${this.options.maxQueueSize} records waiting for the exporter)`);
      return;
    }
    this.queue.push(record);
    if (this.queue.length >= this.options.maxBatchSize) this.exportNext();
    else this.timer ??= setTimeout(() => this.exportNext(), this.options.delayMs).unref();
  }

  async forceFlush(): Promise<void> {
    while (this.queue.length > 0 || this.exporting) {
      if (this.exporting) await this.exporting;
      else this.exportNext();
    }
    await this.exporter.forceFlush?.();
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    await this.forceFlush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.exporter.shutdown();
  }

  /** Starts exporting one batch unless one is in flight; its end starts the next. */
  private exportNext(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.exporting || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.options.maxBatchSize);
    this.exporting = this.send(batch).then(() => {
      this.exporting = undefined;
      if (this.queue.length >= this.options.maxBatchSize) this.exportNext();
      else if (this.queue.length > 0 && !this.closed) this.timer ??= setTimeout(() => this.exportNext(), this.options.delayMs).unref();
    });
  }

  private send(batch: ReadWriteLogRecord[]): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (failure: string | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (failure !== undefined) {
          this.lose('exportFailed', batch.length, failure);
          this.options.watch?.failed(batch.length, failure);
        } else {
          this.options.watch?.succeeded();
        }
        resolve();
      };
      const timer = setTimeout(() => settle(`no answer within ${this.options.exportTimeoutMs} ms`), this.options.exportTimeoutMs);
      try {
        this.exporter.export(batch, (result) =>
          settle(result.code === ExportResultCode.SUCCESS ? undefined : (result.error?.message ?? 'the exporter reported a failure')),
        );
      } catch (err) {
        settle((err as Error).message);
      }
    });
  }

  private lose(kind: keyof LogLosses, records: number, detail: string): void {
    if (this.lossCounts[kind] === 0) this.options.onFirstLoss?.(kind, detail);
    this.lossCounts[kind] += records;
  }
}
