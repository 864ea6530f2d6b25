/**
 * Reads a kernel map into two Buffers it keeps from one read to the next.
 * A collection of 100,000 flow rows reads about 8 MB; new Buffers on every
 * collection stay allocated until V8 collects them, and several generations
 * of them were a fifth of the agent's memory at that size. The Buffers grow
 * to what the map holds and shrink when it empties.
 */
import type { MapRows, NativeBpfObject } from './native';

/** Rows the Buffers start with, and the least they shrink to. */
const MIN_ROWS = 64;
/**
 * Rows per batch of forEach(): enough that a walk of 100,000 rows is a few
 * dozen calls, few enough that the Buffers stay a few hundred KB.
 */
const BATCH_ROWS = 4096;

export class MapRowsReader {
  private readonly keySize: number;
  private readonly valueStride: number;
  private rows = 0;
  private keys = Buffer.alloc(0);
  private values = Buffer.alloc(0);
  private batch: MapRows | undefined;

  constructor(
    private readonly object: NativeBpfObject,
    private readonly mapName: string,
  ) {
    const info = object.mapInfo(mapName);
    this.keySize = info.keySize;
    this.valueStride = info.valueStride;
  }

  /** Rows the Buffers have room for now. */
  get roomRows(): number {
    return this.rows;
  }

  /**
   * Every row of the map, in batches: onBatch gets rows whose Buffers the
   * next batch overwrites, and `first`, the position of the batch's first
   * row in the walk. Returns the number of rows. For maps of many rows: the
   * Buffers are one batch, not the whole map.
   */
  forEach(onBatch: (rows: MapRows, first: number) => void): number {
    if (this.batch === undefined) {
      // Not from Node's shared pool: these live as long as the table.
      this.batch = { count: 0, keys: Buffer.allocUnsafeSlow(BATCH_ROWS * this.keySize), values: Buffer.allocUnsafeSlow(BATCH_ROWS * this.valueStride), keySize: this.keySize, valueStride: this.valueStride };
    }
    const batch = this.batch;
    let first = 0;
    return this.object.mapReadEach(this.mapName, batch.keys, batch.values, (count) => {
      batch.count = count;
      onBatch(batch, first);
      first += count;
    });
  }

  /** Every row of the map. Valid until the next read(), which overwrites the Buffers. */
  read(): MapRows {
    for (;;) {
      const { count, complete } = this.object.mapReadInto(this.mapName, this.keys, this.values);
      if (!complete) {
        // Out of room (or exactly full): read again from the start with twice the room.
        this.resize(Math.max(MIN_ROWS, this.rows * 2));
        continue;
      }
      const rows: MapRows = { count, keys: this.keys, values: this.values, keySize: this.keySize, valueStride: this.valueStride };
      // The rows just read keep the old Buffers; the next read gets smaller ones.
      if (this.rows > MIN_ROWS && count * 4 < this.rows) this.resize(Math.max(MIN_ROWS, count * 2));
      return rows;
    }
  }

  private resize(rows: number): void {
    this.rows = rows;
    // Not from Node's shared pool: these live long and are megabytes.
    this.keys = Buffer.allocUnsafeSlow(rows * this.keySize);
    this.values = Buffer.allocUnsafeSlow(rows * this.valueStride);
  }
}
