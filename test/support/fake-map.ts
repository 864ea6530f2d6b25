/**
 * Gives a fake BPF object that serves mapReadAll the rest of the map-reading
 * API the agent's tables use (mapInfo, mapReadInto), answering as the addon
 * does: the rows that fit, and complete only when room was left over.
 */
import type { MapRows, NativeBpfObject } from '../../src/bpf/native';

export function withReadInto(object: NativeBpfObject): NativeBpfObject {
  const readAll = (name: string): MapRows => object.mapReadAll(name);
  return Object.assign(object, {
    mapInfo: (name: string) => {
      const { keySize, valueStride } = readAll(name);
      return { name, fd: -1, type: 1, keySize, valueSize: valueStride, maxEntries: 1 << 20, perCpu: false, valueStride };
    },
    mapReadInto: (name: string, keys: Buffer, values: Buffer) => {
      const all = readAll(name);
      const room = Math.min(keys.length / all.keySize, values.length / all.valueStride);
      const count = Math.min(room, all.count);
      all.keys.copy(keys, 0, 0, count * all.keySize);
      all.values.copy(values, 0, 0, count * all.valueStride);
      return { count, complete: all.count < room };
    },
  });
}
