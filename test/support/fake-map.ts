/**
 * Gives a fake BPF object that serves mapReadAll the rest of the map-reading
 * API the agent's tables use (mapInfo, mapReadEach), answering as the addon
 * does: batches of at most the Buffers' room.
 */
import type { MapRows, NativeBpfObject } from '../../src/bpf/native';

/** `perCpu`: whether the map holds one value per CPU in each row, as mapInfo says. */
export function withBatchReads(object: NativeBpfObject, perCpu: boolean): NativeBpfObject {
  const readAll = (name: string): MapRows => object.mapReadAll(name);
  return Object.assign(object, {
    mapInfo: (name: string) => {
      const { keySize, valueStride } = readAll(name);
      return { name, fd: -1, type: 1, keySize, valueSize: valueStride, maxEntries: 1 << 20, perCpu, valueStride };
    },
    mapReadEach: (name: string, keys: Buffer, values: Buffer, onBatch: (count: number) => void) => {
      const all = readAll(name);
      const room = Math.min(keys.length / all.keySize, values.length / all.valueStride);
      for (let first = 0; first < all.count; first += room) {
        const count = Math.min(room, all.count - first);
        all.keys.copy(keys, 0, first * all.keySize, (first + count) * all.keySize);
        all.values.copy(values, 0, first * all.valueStride, (first + count) * all.valueStride);
        onBatch(count);
      }
      return all.count;
    },
  });
}
