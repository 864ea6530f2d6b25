/**
 * A set of fixed-size byte keys kept in one Buffer and found through an
 * open-addressing index. It does for 100,000 kernel rows what a Map keyed by
 * the key bytes as strings did, without a string, a map entry and an object
 * per row on the JavaScript heap (about 200 bytes per row there, 40-60 here).
 *
 * A key's slot is its position in the Buffer. Slots stay where they are until
 * compact(), so callers keep per-key state in typed arrays indexed by slot
 * and move it with the remapping compact() returns.
 */

/** The index is at most half full: linear probing stays short. */
const INDEX_LOAD = 2;
/** The least room a set has: it grows by doubling, which needs something to double. */
const MIN_CAPACITY = 4;

export class FixedKeySet {
  private keys: Buffer;
  /** slot + 1 per bucket; 0 is an empty bucket. */
  private index: Int32Array;
  private count = 0;

  constructor(
    readonly keySize: number,
    initialCapacity = 64,
  ) {
    if (!Number.isInteger(keySize) || keySize <= 0) throw new Error(`FixedKeySet: keySize must be a positive integer, got ${keySize}`);
    const capacity = Math.max(MIN_CAPACITY, initialCapacity);
    this.keys = Buffer.alloc(capacity * keySize);
    this.index = new Int32Array(indexSizeFor(capacity));
  }

  get size(): number {
    return this.count;
  }

  /** Slots the set has room for before it grows (callers size their per-slot arrays by it). */
  get capacity(): number {
    return this.keys.length / this.keySize;
  }

  /** The Buffer that holds every key; the key of `slot` starts at offsetOf(slot). Replaced when the set grows. */
  get bytes(): Buffer {
    return this.keys;
  }

  offsetOf(slot: number): number {
    return slot * this.keySize;
  }

  /** True when the key in `slot` is the keySize bytes of `source` at `offset`. */
  matches(slot: number, source: Buffer, offset: number): boolean {
    // A loop, not Buffer.compare(): that is a call into C++, and this runs for every row of every read.
    const keys = this.keys;
    const at = slot * this.keySize;
    for (let i = this.keySize - 1; i >= 0; i--) if (keys[at + i] !== source[offset + i]) return false;
    return true;
  }

  /** The slot of the key at `source[offset..]`, or -1. */
  find(source: Buffer, offset: number): number {
    const mask = this.index.length - 1;
    for (let bucket = hashBytes(source, offset, this.keySize) & mask; ; bucket = (bucket + 1) & mask) {
      const entry = this.index[bucket];
      if (entry === 0) return -1;
      if (this.matches(entry - 1, source, offset)) return entry - 1;
    }
  }

  /** Adds a key that is not in the set (find() said -1) and returns its slot: always the next one. */
  add(source: Buffer, offset: number): number {
    if (this.count === this.capacity) this.grow(this.count * 2);
    const slot = this.count++;
    source.copy(this.keys, slot * this.keySize, offset, offset + this.keySize);
    this.place(slot);
    return slot;
  }

  /**
   * Drops every slot whose `keep` is 0, moving the others down in order, and
   * returns where each old slot went (-1: dropped). The set shrinks its
   * Buffer when a quarter or less of it stays in use.
   */
  compact(keep: (slot: number) => boolean): Int32Array {
    const moved = new Int32Array(this.count);
    let next = 0;
    for (let slot = 0; slot < this.count; slot++) {
      if (!keep(slot)) {
        moved[slot] = -1;
        continue;
      }
      if (next !== slot) this.keys.copy(this.keys, next * this.keySize, slot * this.keySize, (slot + 1) * this.keySize);
      moved[slot] = next++;
    }
    this.count = next;
    const capacity = this.capacity;
    if (capacity > 64 && next * 4 <= capacity) this.grow(Math.max(64, next * 2));
    else this.reindex();
    return moved;
  }

  private grow(capacity: number): void {
    const keys = Buffer.alloc(capacity * this.keySize);
    this.keys.copy(keys, 0, 0, this.count * this.keySize);
    this.keys = keys;
    this.index = new Int32Array(indexSizeFor(capacity));
    this.reindex();
  }

  private reindex(): void {
    this.index.fill(0);
    for (let slot = 0; slot < this.count; slot++) this.place(slot);
  }

  private place(slot: number): void {
    const mask = this.index.length - 1;
    let bucket = hashBytes(this.keys, slot * this.keySize, this.keySize) & mask;
    while (this.index[bucket] !== 0) bucket = (bucket + 1) & mask;
    this.index[bucket] = slot + 1;
  }
}

function indexSizeFor(capacity: number): number {
  let size = 16;
  while (size < capacity * INDEX_LOAD) size *= 2;
  return size;
}

/** FNV-1a over the bytes, then a murmur3 finalizer: linear probing needs the low bits well mixed. */
function hashBytes(bytes: Buffer, offset: number, length: number): number {
  let h = 0x811c9dc5;
  for (let i = offset, end = offset + length; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
