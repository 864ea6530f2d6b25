/**
 * A protobuf wire-format writer for the OTLP metrics request: one growing
 * buffer, written in a single pass. A length-delimited field reserves one
 * byte for its length and moves its content when the length needs more
 * (most nested messages are short), so no size pass is needed first.
 */

const TWO_POW_32 = 0x1_0000_0000;
/** 1e9 = 2^9 × 1,953,125: nanoseconds of an HrTime are built from parts that stay exact in a double. */
const FIVE_POW_9 = 1_953_125;
const TWO_POW_23 = 0x80_0000;

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH = 2;

export class ProtoWriter {
  private buf: Buffer;
  /** Write position. A caller may move it back to discard what it wrote since, when no field it began is still open. */
  pos = 0;
  /** The last HrTime converted and its result: every point of a metric shares its end time. */
  private lastTime: readonly [number, number] | undefined;
  private lastTimeLow = 0;
  private lastTimeHigh = 0;

  constructor(initialSize = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  /**
   * The buffer handed out by lend() and not given back yet: the next message
   * must not be written over it while it is being sent.
   */
  private lent: Buffer | undefined;

  /** Starts a new message in the buffer (a new buffer, sized like this one, while this one is lent). */
  reset(): void {
    if (this.lent === this.buf) this.buf = Buffer.allocUnsafe(this.buf.length);
    this.pos = 0;
    this.lastTime = undefined;
  }

  /**
   * What was written, handed over without a copy in the writer's own buffer,
   * which the next message reuses once `giveBack` returns it. Each request in
   * a new buffer is garbage outside V8's heap that lingers until a GC: at
   * 100,000 flows that is about 100 MB per export, and it was most of the
   * agent's RSS peak. A message begun before the give-back (or by a caller
   * that keeps what it got) goes to a new buffer of the same size.
   */
  lend(): Uint8Array {
    this.lent = this.buf;
    return this.buf.subarray(0, this.pos);
  }

  /** Returns what lend() handed out (anything else is ignored): its bytes may be overwritten from now on. */
  giveBack(bytes: Uint8Array): void {
    if (this.lent !== undefined && bytes.buffer === this.lent.buffer) this.lent = undefined;
  }

  /** A copy of what was written, sized exactly, keeping the buffer (small encodings that are cached). */
  copy(): Uint8Array {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  tag(field: number, wire: number): void {
    this.uint32((field << 3) | wire);
  }

  /** A varint of 0..2^32-1. */
  uint32(value: number): void {
    this.ensure(5);
    this.pos = this.varintAt(this.pos, value >>> 0);
  }

  /** A varint of an int64 given as a number (negative values take ten bytes, as int64 does on the wire). */
  int64(value: number): void {
    if (value >= 0 && value < TWO_POW_32) {
      this.uint32(value);
      return;
    }
    let low = value >>> 0;
    let high = Math.floor(value / TWO_POW_32) >>> 0;
    this.ensure(10);
    while (high !== 0 || low > 0x7f) {
      this.buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    this.buf[this.pos++] = low;
  }

  fixed64(low: number, high: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(low >>> 0, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /** An sfixed64 of a number, truncated toward zero; negative values in two's complement. */
  sfixed64(value: number): void {
    const v = Math.trunc(value);
    this.fixed64(v >>> 0, Math.floor(v / TWO_POW_32) >>> 0);
  }

  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** An HrTime ([seconds, nanoseconds]) as fixed64 nanoseconds. */
  hrTime(time: readonly [number, number]): void {
    if (time !== this.lastTime) {
      // seconds × 1e9 exceeds 2^53; seconds × 5^9 does not, and × 2^9 is a shift split across the halves.
      const scaled = time[0] * FIVE_POW_9;
      const scaledHigh = Math.floor(scaled / TWO_POW_23);
      const lowSum = (scaled - scaledHigh * TWO_POW_23) * 512 + time[1];
      const carry = Math.floor(lowSum / TWO_POW_32);
      this.lastTimeLow = lowSum - carry * TWO_POW_32;
      this.lastTimeHigh = scaledHigh + carry;
      this.lastTime = time;
    }
    this.fixed64(this.lastTimeLow, this.lastTimeHigh);
  }

  /** A length-delimited UTF-8 string. */
  string(value: string): void {
    const length = value.length;
    this.ensure(5 + length * 3);
    // Attribute keys and values are nearly always ASCII: copy char codes while they are.
    if (length < 0x80) {
      const lengthAt = this.pos++;
      let at = this.pos;
      for (let i = 0; i < length; i++) {
        const code = value.charCodeAt(i);
        if (code >= 0x80) {
          this.pos = lengthAt;
          this.utf8(value);
          return;
        }
        this.buf[at++] = code;
      }
      this.buf[lengthAt] = length;
      this.pos = at;
      return;
    }
    this.utf8(value);
  }

  bytes(value: Uint8Array): void {
    this.uint32(value.length);
    this.raw(value);
  }

  /** Bytes already in wire format (a cached encoding). */
  raw(value: Uint8Array): void {
    this.ensure(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  /**
   * Opens a length-delimited field (after its tag), reserving `reserve`
   * bytes for its length (2 for a message of 128 bytes to 16 KiB, such as a
   * data point with pod attributes); pass the result to end().
   */
  begin(reserve: 1 | 2 = 1): number {
    this.ensure(reserve);
    const mark = this.pos;
    this.pos += reserve;
    return mark * 2 + reserve - 1;
  }

  /** Closes the field begun with `mark`, writing its length (the content moves when the reserve was not its size). */
  end(mark: number): void {
    const reserved = (mark & 1) + 1;
    mark = mark >>> 1;
    const length = this.pos - mark - reserved;
    const size = varintSize(length);
    if (size !== reserved) {
      this.ensure(size - reserved);
      this.buf.copyWithin(mark + size, mark + reserved, this.pos);
      this.pos += size - reserved;
    }
    this.varintAt(mark, length);
  }

  /** Writes a varint of 0..2^32-1 at `at` (room already ensured); returns the position after it. */
  private varintAt(at: number, value: number): number {
    let v = value;
    while (v > 0x7f) {
      this.buf[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[at++] = v;
    return at;
  }

  private utf8(value: string): void {
    const length = Buffer.byteLength(value, 'utf8');
    this.uint32(length);
    this.ensure(length);
    this.pos += this.buf.write(value, this.pos, length, 'utf8');
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x20_0000) return 3;
  if (value < 0x1000_0000) return 4;
  return 5;
}
