import assert from 'node:assert/strict';
import { EventBatches } from '../../src/bpf/event-batches';

/** A batch as the native consumer frames it: [u32 length][payload][pad to 8]. */
function framedBatch(payloads: number[]): Buffer {
  const parts: Buffer[] = [];
  for (const value of payloads) {
    const frame = Buffer.alloc(8 + 8);
    frame.writeUInt32LE(8, 0);
    frame.writeUInt32LE(value, 4);
    parts.push(frame.subarray(0, 4 + 8 + 4)); // 4 + 8 payload bytes, padded to 16
  }
  return Buffer.concat(parts);
}

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    /* a slow handler */
  }
}

describe('event batches', () => {
  it('handles every record once, in order, in slices that let timers run between them', async () => {
    const seen: number[] = [];
    const done: number[] = [];
    const batches = new EventBatches(
      (batch, start) => {
        seen.push(batch.readUInt32LE(start));
        busy(0.5);
      },
      (bytes) => done.push(bytes),
      10,
    );
    const first = framedBatch(Array.from({ length: 300 }, (_, i) => i));
    const second = framedBatch(Array.from({ length: 100 }, (_, i) => 300 + i));
    batches.push(first, 300);
    batches.push(second, 100);
    // A timer due now must fire while 400 records × 0.5 ms (200 ms of work) are being handled.
    const firedAfter = await new Promise<number>((resolve) => setTimeout(() => resolve(seen.length), 0));
    assert.ok(firedAfter < 400, `the timer waited for all ${firedAfter} records`);
    // Records handled between two turns of the timers: a slice is 10 ms, 20 records at 0.5 ms each, and ends
    // at the next clock check (every 32 records). Counting records, not milliseconds, holds on a busy machine.
    const perTurn: number[] = [];
    let before = seen.length;
    while (seen.length < 400) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      perTurn.push(seen.length - before);
      before = seen.length;
    }
    assert.ok(Math.max(...perTurn) <= 64, `${Math.max(...perTurn)} records handled without a turn of the timers`);
    assert.deepEqual(
      seen,
      Array.from({ length: 400 }, (_, i) => i),
    );
    assert.deepEqual(done, [first.length, second.length]);
  });

  it('drains everything at once when asked (at stop)', () => {
    const seen: number[] = [];
    const done: number[] = [];
    const batches = new EventBatches(
      (batch, start) => seen.push(batch.readUInt32LE(start)),
      (bytes) => done.push(bytes),
      1,
    );
    const batch = framedBatch([7, 8, 9]);
    batches.push(batch, 3);
    batches.drain();
    assert.deepEqual(seen, [7, 8, 9]);
    assert.deepEqual(done, [batch.length]);
  });
});
