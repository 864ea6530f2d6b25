/**
 * Reads records whose layout comes from BTF. A probe group names the fields
 * it needs; a field missing from the object's BTF is an error at start-up,
 * not a silently wrong number at run time.
 */
import type { MemberLayout, StructLayoutInfo } from './native';

export class StructReader<F extends string> {
  readonly size: number;
  private readonly fields: Record<F, MemberLayout>;

  constructor(structName: string, layout: StructLayoutInfo, fieldNames: readonly F[]) {
    this.size = layout.size;
    const fields = {} as Record<F, MemberLayout>;
    for (const name of fieldNames) {
      const member = layout.members[name];
      if (!member) {
        throw new Error(`struct ${structName}: BTF has no member '${name}' (has: ${Object.keys(layout.members).join(', ')})`);
      }
      fields[name] = member;
    }
    this.fields = fields;
  }

  /** Unsigned integer of 1, 2, 4 or 8 bytes (little-endian host; u64 as bigint). */
  uint(buf: Buffer, base: number, field: F): number {
    const { offset, size } = this.fields[field];
    switch (size) {
      case 1:
        return buf.readUInt8(base + offset);
      case 2:
        return buf.readUInt16LE(base + offset);
      case 4:
        return buf.readUInt32LE(base + offset);
      case 8:
        return readU64(buf, base + offset);
      default:
        throw new Error(`field ${field} is ${size} bytes, not an integer`);
    }
  }

  bigint(buf: Buffer, base: number, field: F): bigint {
    const { offset, size } = this.fields[field];
    if (size !== 8) throw new Error(`field ${field} is ${size} bytes, not a u64`);
    return buf.readBigUInt64LE(base + offset);
  }

  bytes(buf: Buffer, base: number, field: F): Buffer {
    const { offset, size } = this.fields[field];
    return buf.subarray(base + offset, base + offset + size);
  }

  /** The field's raw bytes as a string (one char per byte): exact for u64s, cheap as a Map key part. */
  keyPart(buf: Buffer, base: number, field: F): string {
    const { offset, size } = this.fields[field];
    return buf.toString('latin1', base + offset, base + offset + size);
  }

  member(field: F): MemberLayout {
    return this.fields[field];
  }
}

/** A u64 (s64 if `signed`) as a number: two 32-bit reads, no BigInt (counters stay below 2^53). */
export function readU64(buf: Buffer, at: number, signed = false): number {
  return (signed ? buf.readInt32LE(at + 4) : buf.readUInt32LE(at + 4)) * 4294967296 + buf.readUInt32LE(at);
}

/** One u64/s64 field of a per-CPU value summed over CPUs, as a number (the per-row hot path). */
export function sumPerCpu(values: Buffer, at: number, cpus: number, perCpuStride: number, signed = false): number {
  let total = 0;
  for (let cpu = 0; cpu < cpus; cpu++, at += perCpuStride) total += readU64(values, at, signed);
  return total;
}
