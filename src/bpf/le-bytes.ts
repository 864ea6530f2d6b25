/** Little-endian encodings of values handed to the kernel: BPF globals (setGlobal) and map keys. */
export function u8(v: number): Buffer {
  return Buffer.from([v]);
}

export function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

export function u64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}
