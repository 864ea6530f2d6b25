import assert from 'node:assert/strict';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, ReadWriteLogRecord, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { LogQueue } from '../../src/exporters/log-queue';

/** An exporter whose answers the test controls: each call waits until answered. */
class ScriptedExporter implements LogRecordExporter {
  readonly calls: Array<{ records: readonly ReadableLogRecord[]; answer: (result: ExportResult) => void }> = [];
  shutdowns = 0;
  export(records: ReadableLogRecord[], done: (result: ExportResult) => void): void {
    this.calls.push({ records, answer: done });
  }
  async shutdown(): Promise<void> {
    this.shutdowns++;
  }
  async forceFlush(): Promise<void> {}
}

const record = (n: number) => ({ body: `event ${n}` }) as unknown as ReadWriteLogRecord;
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('log queue', () => {
  it('exports in batches, one call at a time, and delivers everything on flush', async () => {
    const exporter = new ScriptedExporter();
    const queue = new LogQueue(exporter, { maxQueueSize: 100, maxBatchSize: 10, delayMs: 60_000, exportTimeoutMs: 60_000 });
    for (let i = 0; i < 25; i++) queue.onEmit(record(i));
    assert.equal(exporter.calls.length, 1, 'a full batch goes out at once; the next waits for its answer');
    assert.equal(exporter.calls[0].records.length, 10);
    const flushed = queue.forceFlush();
    for (let answered = 0; answered < 3; answered++) {
      await tick();
      exporter.calls[answered].answer({ code: ExportResultCode.SUCCESS });
    }
    await flushed;
    assert.deepEqual(
      exporter.calls.map((c) => c.records.length),
      [10, 10, 5],
    );
    assert.deepEqual(queue.losses, { queueFull: 0, exportFailed: 0 });
  });

  it('counts records dropped at a full queue and in failed or unanswered exports, telling each kind once', async () => {
    const exporter = new ScriptedExporter();
    const told: string[] = [];
    const queue = new LogQueue(exporter, { maxQueueSize: 4, maxBatchSize: 2, delayMs: 60_000, exportTimeoutMs: 50, onFirstLoss: (kind) => told.push(kind) });
    for (let i = 0; i < 9; i++) queue.onEmit(record(i));
    // 2 in the call in flight, 4 queued, 3 dropped.
    assert.equal(queue.losses.queueFull, 3);
    exporter.calls[0].answer({ code: ExportResultCode.FAILED, error: new Error('UNAVAILABLE') });
    await tick();
    assert.equal(queue.losses.exportFailed, 2);
    // The next call is never answered: it times out and its records count as failed too.
    for (const deadline = Date.now() + 5000; queue.losses.exportFailed < 4 && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(queue.losses.exportFailed, 4);
    assert.equal(exporter.calls.length, 3, 'the last batch went out after the timeout');
    exporter.calls[2].answer({ code: ExportResultCode.SUCCESS });
    // A late answer to a timed-out call does not count twice.
    exporter.calls[1].answer({ code: ExportResultCode.FAILED });
    await queue.shutdown();
    assert.equal(queue.losses.exportFailed, 4);
    assert.deepEqual(told, ['queueFull', 'exportFailed']);
    assert.equal(exporter.shutdowns, 1);
    queue.onEmit(record(99));
    assert.equal(exporter.calls.length, 3, 'nothing is exported after shutdown');
  });
});
