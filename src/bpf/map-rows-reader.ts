/**
 * Walks a kernel map in batches through two Buffers it keeps from one walk
 * to the next. Reading a whole map at once took Buffers of every row (about
 * 9 MB at 100,000 flows on two CPUs), and new ones per collection stayed
 * allocated until V8 collected them; a batch is a few hundred KB at most.
 */
import type { MapRows } from './native';
import type { AnyLoadedObject } from './object-names';

/**
 * Rows per batch: enough that a walk of 100,000 rows is a few dozen calls,
 * and no more than fit in BATCH_BYTES, so a map of large values (a
 * histogram row is about 1.4 KB) keeps Buffers of a few hundred KB too.
 */
const MAX_BATCH_ROWS = 4096;
const BATCH_BYTES = 512 * 1024;

export class MapRowsReader {
  private readonly keySize: number;
  /** Bytes per value in a batch (every CPU's value of a per-CPU map). */
  readonly valueStride: number;
  /** Whether each row holds one value per possible CPU. */
  readonly perCpu: boolean;
  private readonly batchRows: number;
  private batch: MapRows | undefined;

  constructor(
    private readonly object: AnyLoadedObject,
    private readonly mapName: string,
  ) {
    const info = object.mapInfo(mapName);
    this.keySize = info.keySize;
    this.valueStride = info.valueStride;
    this.perCpu = info.perCpu;
    this.batchRows = Math.max(1, Math.min(MAX_BATCH_ROWS, Math.floor(BATCH_BYTES / (this.keySize + this.valueStride))));
  }

  /**
   * Every row of the map, in batches: onBatch gets rows whose Buffers the
   * next batch overwrites, and `first`, the position of the batch's first
   * row in the walk. Returns the number of rows.
   */
  forEach(onBatch: (rows: MapRows, first: number) => void): number {
    if (this.batch === undefined) {
      // Not from Node's shared pool: these live as long as the table.
      this.batch = {
        count: 0,
        keys: Buffer.allocUnsafeSlow(this.batchRows * this.keySize),
        values: Buffer.allocUnsafeSlow(this.batchRows * this.valueStride),
        keySize: this.keySize,
        valueStride: this.valueStride,
      };
    }
    const batch = this.batch;
    let first = 0;
    return this.object.mapReadEach(this.mapName, batch.keys, batch.values, (count) => {
      batch.count = count;
      onBatch(batch, first);
      first += count;
    });
  }
}
