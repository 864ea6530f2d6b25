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

export class MapRowsReader {
  private readonly keySize: number;
  private readonly valueStride: number;
  private rows = 0;
  private keys = Buffer.alloc(0);
  private values = Buffer.alloc(0);

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
