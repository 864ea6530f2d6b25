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
        return Number(buf.readBigUInt64LE(base + offset));
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

  member(field: F): MemberLayout {
    return this.fields[field];
  }
}

/** Sums a u64 field over every possible CPU of a per-CPU value. */
export function sumPerCpuU64(
  values: Buffer,
  valueOffset: number,
  fieldOffset: number,
  cpus: number,
  perCpuStride: number,
): bigint {
  let total = 0n;
  for (let cpu = 0; cpu < cpus; cpu++) {
    total += values.readBigUInt64LE(valueOffset + cpu * perCpuStride + fieldOffset);
  }
  return total;
}
